import type { ModelComparison, ModelVersion } from './model.js';

const METRIC_ORDER = ['mAP50', 'mAP50_95', 'precision', 'recall'];
function metricOrder(x: string, y: string): number {
  const ix = METRIC_ORDER.indexOf(x);
  const iy = METRIC_ORDER.indexOf(y);
  if (ix !== -1 || iy !== -1) return (ix === -1 ? 99 : ix) - (iy === -1 ? 99 : iy);
  return x.localeCompare(y);
}

function diff(metric: string, a: number | undefined, b: number | undefined) {
  return { metric, a: a ?? null, b: b ?? null, delta: a === undefined || b === undefined ? null : b - a };
}

/** Compares two versions metric by metric (delta = b − a), overall and per class. */
export function compareVersions(a: ModelVersion, b: ModelVersion): ModelComparison {
  const names = [...new Set([...Object.keys(a.metrics), ...Object.keys(b.metrics)])].sort(metricOrder);
  const metrics = names.map((metric) => diff(metric, a.metrics[metric], b.metrics[metric]));
  const perClass: ModelComparison['perClass'] = [];
  for (const className of [...new Set([...Object.keys(a.perClass), ...Object.keys(b.perClass)])].sort()) {
    const ma = a.perClass[className] ?? {};
    const mb = b.perClass[className] ?? {};
    for (const metric of [...new Set([...Object.keys(ma), ...Object.keys(mb)])].sort(metricOrder)) {
      perClass.push({ className, ...diff(metric, ma[metric], mb[metric]) });
    }
  }
  return {
    a,
    b,
    metrics,
    perClass,
    sameDataset: a.lineage.dataset !== null && a.lineage.dataset === b.lineage.dataset,
    sameClasses: JSON.stringify(a.classNames) === JSON.stringify(b.classNames),
  };
}
