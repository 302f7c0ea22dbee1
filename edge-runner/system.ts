import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Folders where Linux exposes thermal zones (each `thermal_zoneN` holds `temp` in millidegrees Celsius). */
export const THERMAL_ROOTS = ['/sys/class/thermal', '/sys/devices/virtual/thermal'];

/** Hottest thermal zone in °C, or null where none is readable (containers, macOS). */
export async function readTemperature(roots: readonly string[] = THERMAL_ROOTS): Promise<number | null> {
  let hottest: number | null = null;
  for (const root of roots) {
    let zones: string[];
    try {
      zones = (await readdir(root)).filter((z) => z.startsWith('thermal_zone'));
    } catch {
      continue;
    }
    for (const zone of zones) {
      try {
        const milli = Number((await readFile(path.join(root, zone, 'temp'), 'utf8')).trim());
        // Some zones report -273000 or 0 when the sensor is off.
        if (Number.isFinite(milli) && milli > 0) hottest = Math.max(hottest ?? -Infinity, milli / 1000);
      } catch {
        // Unreadable zone (permissions, sensor off).
      }
    }
    if (hottest !== null) break;
  }
  return hottest === null ? null : Math.round(hottest * 10) / 10;
}

/** System CPU use in percent (0..100 over all cores) since the previous call. */
export class CpuMeter {
  private last = snapshot();

  read(): number {
    const now = snapshot();
    const idle = now.idle - this.last.idle;
    const total = now.total - this.last.total;
    this.last = now;
    return total <= 0 ? 0 : Math.round(Math.max(0, Math.min(100, (1 - idle / total) * 100)) * 10) / 10;
  }
}

function snapshot(): { idle: number; total: number } {
  let idle = 0;
  let total = 0;
  for (const c of os.cpus()) {
    idle += c.times.idle;
    total += c.times.user + c.times.nice + c.times.sys + c.times.idle + c.times.irq;
  }
  return { idle, total };
}

/** Memory in use on the device in MB (MemTotal − MemAvailable; on a Jetson this includes what the GPU uses). */
export async function readMemoryUsedMb(): Promise<number> {
  try {
    const info = await readFile('/proc/meminfo', 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
    const used = kb('MemTotal') - kb('MemAvailable');
    if (Number.isFinite(used)) return Math.round(used / 1024);
  } catch {
    // Not Linux.
  }
  return Math.round((os.totalmem() - os.freemem()) / 1024 / 1024);
}
