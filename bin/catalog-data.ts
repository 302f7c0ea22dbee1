import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../app/config.js';
import { systemPrincipal, type CallContext } from '../core/context.js';
import { PlatformError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { defaultDataFolders, parseRoots } from '../services/datasets/roots.js';

const VERSION_REF = /^([a-z0-9][a-z0-9._-]{0,99})@(\d+)$/i;

/** True when `--data` names a dataset version of the platform's catalog (`name@N`) rather than a local folder. */
export function isCatalogRef(data: string): boolean {
  return VERSION_REF.test(data) && !existsSync(data);
}

/**
 * `--data name@N`: the dataset version of the configured platform's catalog, in project `projectId`
 * only (another project's dataset is "not found" there), exported once as a YOLO folder under the
 * export root (`EXPORT_ROOTS`, default DATA_DIR/exports) at `cli/<project>/<name>@<N>`; a version
 * never changes, so a folder already exported is used again. Returns the folder.
 */
export async function catalogDataset(
  cfg: Config,
  log: Logger,
  ref: string,
  projectId: string,
  onProgress?: (message: string) => void,
): Promise<string> {
  const m = VERSION_REF.exec(ref);
  if (m === null)
    throw new PlatformError(
      'invalid_input',
      `--data ${ref}: name a dataset version as name@N, e.g. helmets@2`,
    );
  const { createPlatform } = await import('../app/platform.js');
  const platform = await createPlatform(cfg, log);
  try {
    await platform.prepare();
    const project = await platform.infra.db.kysely
      .selectFrom('projects')
      .select('id')
      .where('id', '=', projectId)
      .executeTakeFirst();
    if (project === undefined)
      throw new PlatformError(
        'not_found',
        `project "${projectId}" not found; pass --project with one of yours`,
      );
    const ctx: CallContext = {
      user: systemPrincipal(),
      projectId,
      requestId: `cli-${process.pid}`,
      log,
    };
    const version = await platform.datasets.get(ctx, ref);
    const root = (parseRoots(cfg.EXPORT_ROOTS) ?? [defaultDataFolders(cfg.DATA_DIR).exports])[0]!;
    const folder = path.join(root, 'cli', projectId, version.ref);
    if (existsSync(path.join(folder, 'data.yaml'))) {
      onProgress?.(`using ${version.ref} of project ${projectId} exported before in ${folder}`);
      return folder;
    }
    onProgress?.(
      `exporting ${version.ref} of project ${projectId} (${version.stats.images} images) to ${folder}`,
    );
    const out = await platform.datasets.export(ctx, version.ref, {
      format: 'yolo',
      to: { kind: 'folder', path: folder },
    });
    return out.location;
  } finally {
    await platform.close();
  }
}
