#!/usr/bin/env node
// The one CLI entry: registers the TypeScript loader, then runs bin/cli.ts.
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
