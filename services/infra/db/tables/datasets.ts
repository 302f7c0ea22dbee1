import type { Generated } from 'kysely';

/** Tables of the datasets domain: datasets, their immutable versions, and each version's images. */
export interface DatasetTables {
  datasets: {
    id: string;
    project_id: string;
    /** `^[a-z0-9][a-z0-9._-]{0,63}$`, unique per project. */
    name: string;
    description: string;
    /** JSON array of strings. */
    tags: string;
    latest_version: number;
    created_by: string;
    created_at: number;
    updated_at: number;
  };
  dataset_versions: {
    id: string;
    project_id: string;
    dataset_id: string;
    version: number;
    /** JSON array of class names; a box's class id indexes it. */
    class_names: string;
    /** JSON `DatasetVersionStats`. */
    stats: string;
    /** JSON `ValidationReport`. */
    report: string;
    /** JSON `{ train, val, test }` ratios the split used. */
    split_ratios: string;
    /** JSON: where the version came from (`import`, `resplit`, `samples`) and its parent. */
    lineage: string;
    note: string | null;
    image_count: number;
    box_count: number;
    created_by: string;
    created_at: number;
  };
  dataset_images: {
    id: Generated<number>;
    project_id: string;
    version_id: string;
    sha256: string;
    image_key: string;
    image_bytes: number;
    width: number;
    height: number;
    split: 'train' | 'val' | 'test';
    /** JSON array of `{ classId, x1, y1, x2, y2, difficult? }`, normalised corners. */
    boxes: string;
    label_key: string;
    label_sha256: string;
    label_bytes: number;
    thumbnail_key: string | null;
    /** Where the image came from (path in the source, or the sample's key). */
    source_path: string;
  };
}
