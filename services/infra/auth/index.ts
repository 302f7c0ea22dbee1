import type { Db } from '../db/port.js';
import type { IdentityProvider } from './port.js';

export type { Identity, IdentityProvider, ProviderRole } from './port.js';
export type { FirebaseIdentityProviderOptions } from './firebase.js';
export { LocalIdentityProvider, checkPassword, hashPassword } from './local.js';

/** Builds the configured identity provider: Firebase when `firebaseProjectId` is set (firebase-admin loaded only then), local accounts otherwise. */
export async function createIdentityProvider(opts: {
  firebaseProjectId?: string;
  firebaseAuthEmulatorHost?: string;
  db: Db;
}): Promise<IdentityProvider> {
  if (opts.firebaseProjectId) {
    // firebase-admin reads the emulator only from the process environment; a value from .env reaches it this way.
    if (opts.firebaseAuthEmulatorHost !== undefined)
      process.env.FIREBASE_AUTH_EMULATOR_HOST = opts.firebaseAuthEmulatorHost;
    const { FirebaseIdentityProvider } = await import('./firebase.js');
    return new FirebaseIdentityProvider({ projectId: opts.firebaseProjectId });
  }
  const { LocalIdentityProvider } = await import('./local.js');
  return new LocalIdentityProvider({ db: opts.db });
}
