import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$/, 'a name like helmets-v2 or line-3');

/** Registers the `train-and-deploy` and `investigate-line` prompts. */
export function registerPrompts(server: McpServer): void {
  server.registerPrompt(
    'train-and-deploy',
    {
      title: 'Train a detector and deploy it',
      description:
        'Train a detector on a dataset, follow the run, then roll the new model out to a device group (each changing step waits for approval)',
      argsSchema: {
        dataset: name.describe('dataset name or name@version, e.g. helmets-v2'),
        target: name.describe('device tag to deploy to, e.g. line-3'),
        epochs: z
          .string()
          .regex(/^\d{1,4}$/, 'a whole number')
          .optional()
          .describe('training epochs (default 10)'),
      },
    },
    ({ dataset, target, epochs }) => ({
      description: `Train on ${dataset} and deploy to ${target}`,
      messages: [
        {
          role: 'user',
          content: {
            type: 'text',
            text: [
              `Train an object detector on dataset ${dataset}${epochs ? ` for ${epochs} epochs` : ''} and deploy it to the devices tagged ${target}.`,
              'Steps:',
              `1. describe_dataset for ${dataset}: check the class names, the split sizes and the validation report; stop and tell me if it looks wrong.`,
              `2. start_training on ${dataset}. It is a write step: the result says "pending approval" with an approval id until someone approves; then call approvals_wait with that id. Follow the job through the resource visioninapp://jobs/{id} (subscribe to it) or training_status.`,
              '3. When the job succeeded, report mAP50 and compare the new model version with the one in production (compare_models) if there is one.',
              `4. Only if the new version is at least as good, start the rollout to ${target}. It is critical: an approver must approve it.`,
              'Show me every approval id you are waiting for, and never try to approve your own steps.',
            ].join('\n'),
          },
        },
      ],
    }),
  );

  server.registerPrompt(
    'investigate-line',
    {
      title: 'Investigate a production line',
      description:
        'Look into the devices of a line: health, model versions they run, recent rollouts and low-confidence feedback',
      argsSchema: {
        line: name.describe('device tag of the line, e.g. line-3'),
        symptom: z
          .string()
          .max(500)
          .optional()
          .describe('what was noticed, e.g. "missed helmets since this morning"'),
      },
    },
    ({ line, symptom }) => ({
      description: `Investigate ${line}`,
      messages: [
        {
          role: 'user',
          content: {
            type: 'text',
            text: [
              `Investigate the devices tagged ${line}${symptom ? `; reported symptom: ${symptom}` : ''}.`,
              `1. List the devices of ${line} (resources visioninapp://devices/{id} or the fleet tools): which are offline, unhealthy or on a different model version than the others.`,
              `2. Check the latest rollouts to ${line} (visioninapp://rollouts/{id}): any paused, rolled back or failed, and why.`,
              '3. Look at the model version the line runs (visioninapp://models/{name}/{version}): its metrics and the dataset it was trained on.',
              '4. Search the platform and the audit log for recent changes touching this line.',
              'Summarise what you found with device ids and figures, and propose next steps. Do not change anything: propose, and I will decide.',
            ].join('\n'),
          },
        },
      ],
    }),
  );
}
