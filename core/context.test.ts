import { describe, expect, it } from 'vitest';
import { requireRole, type Role } from './context.js';
import { isPlatformError } from './errors.js';

const as = (role: Role) => ({ user: { userId: 'u', email: 'u@x', name: 'U', role, kind: 'user' as const } });

describe('requireRole', () => {
  it('lets the role and the roles above it through', () => {
    expect(() => requireRole(as('operator'), 'operator', 'starting training')).not.toThrow();
    expect(() => requireRole(as('admin'), 'approver', 'promoting to production')).not.toThrow();
  });

  it('refuses a lower role with forbidden, naming the action, the role needed and the caller’s role', () => {
    let caught: unknown;
    try {
      requireRole(as('viewer'), 'operator', 'starting training');
    } catch (err) {
      caught = err;
    }
    expect(isPlatformError(caught, 'forbidden')).toBe(true);
    expect((caught as Error).message).toBe(
      'starting training needs the operator role or above; you are viewer',
    );
  });
});
