// The pages opened from links (#jobs/…, #rollouts/…, #devices/…, #models/…), one module each.
export { devicePage } from './device-page.js';
export { jobPage, jobsList } from './jobs-page.js';
export { modelPage } from './model-page.js';
export { rolloutPage, rolloutsList } from './rollouts-page.js';
