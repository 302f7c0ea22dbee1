import { type Device, type DeviceTarget } from './model.js';
import type { RolloutStrategy, PlannedDevice, PlannedWave } from './model.js';

/** Splits the devices into a canary and waves: online devices first as canaries, then by name. */
export function assignWaves(
  devices: Device[],
  strategy: RolloutStrategy,
  modelVersionId: string,
): { devices: PlannedDevice[]; waves: PlannedWave[] } {
  const deploy = devices.filter((d) => d.modelVersionId !== modelVersionId);
  const skip = devices.filter((d) => d.modelVersionId === modelVersionId);
  const ordered = [...deploy].sort(
    (a, b) =>
      Number(b.health.online) - Number(a.health.online) ||
      a.name.localeCompare(b.name) ||
      a.id.localeCompare(b.id),
  );
  const total = ordered.length;
  const canary = Math.min(strategy.canary, total);
  const waves: PlannedWave[] = [
    {
      index: 0,
      label: 'canary',
      cumulativePercent: total === 0 ? 100 : Math.round((canary / total) * 100),
      deviceIds: ordered.slice(0, canary).map((d) => d.id),
    },
  ];
  let assigned = canary;
  for (const pct of strategy.waves) {
    const upTo = Math.max(assigned, Math.ceil((pct / 100) * total));
    if (upTo === assigned) continue;
    waves.push({
      index: waves.length,
      label: `wave ${waves.length}`,
      cumulativePercent: pct,
      deviceIds: ordered.slice(assigned, upTo).map((d) => d.id),
    });
    assigned = upTo;
  }
  const waveOf = new Map<string, number>();
  for (const w of waves) for (const id of w.deviceIds) waveOf.set(id, w.index);
  const planned: PlannedDevice[] = ordered.map((d) => ({
    deviceId: d.id,
    name: d.name,
    wave: waveOf.get(d.id) ?? 0,
    online: d.health.online,
    currentModelVersionId: d.modelVersionId,
    action: 'deploy',
    ...(d.health.online ? {} : { note: 'offline now; the offline policy applies when its wave starts' }),
  }));
  for (const d of skip)
    planned.push({
      deviceId: d.id,
      name: d.name,
      wave: 0,
      online: d.health.online,
      currentModelVersionId: d.modelVersionId,
      action: 'skip',
      note: 'already runs this version',
    });
  return { devices: planned, waves };
}

/** A target as text: `tag line-3` or `devices a, b`. */
export function describeTarget(target: DeviceTarget): string {
  return 'tag' in target ? `tag ${target.tag}` : `devices ${target.deviceIds.join(', ')}`;
}
