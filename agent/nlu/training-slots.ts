/** Values of a training request that name where it starts from and which backend trains it. */

/** The model version a retrain starts from: "from helmets@production|@3", or "retrain/fine-tune helmets from production". */
export function findStartingPoint(text: string): string | undefined {
  const ref = /\bfrom\s+["'“”]?([a-z0-9][\w.-]*@(?:\d+|production|staging|candidate|latest))\b/i.exec(
    text,
  )?.[1];
  if (ref !== undefined) return ref;
  const named =
    /\b(?:re-?train|fine[\s-]?tune)\s+(?:the\s+)?["'“”]?([a-z0-9][\w.-]*?)["'“”]?(?:\s+model)?\s+from\s+(production|staging|candidate)\b/i.exec(
      text,
    );
  if (named) return `${named[1]}@${named[2]!.toLowerCase()}`;
  const staged =
    /\b(?:re-?train|fine[\s-]?tune)\s+(?:the\s+)?(production|staging|candidate)\s+["'“”]?([a-z0-9][\w.-]*?)["'“”]?\s+model\b/i.exec(
      text,
    );
  if (staged) return `${staged[2]}@${staged[1]!.toLowerCase()}`;
  // "운영 중인 helmets 모델에서 … 파인튜닝": the name's version at that stage is the starting point
  const ko =
    /(운영|프로덕션|스테이징|후보)\s*(?:중인|중)?\s*([a-z0-9][\w.-]*)\s*(?:모델)?\s*(?:에서|으로부터|부터|기반으로|을\s*기반으로)/i.exec(
      text,
    );
  if (ko && /파인\s*튜닝|재학습|미세\s*조정|fine[\s-]?tun/i.test(text))
    return `${ko[2]}@${{ 운영: 'production', 프로덕션: 'production', 스테이징: 'staging', 후보: 'candidate' }[ko[1]!]}`;
  return undefined;
}

/** Backend and architecture from a model family: YOLOv5–v12, YOLO11, YOLO26 → Ultralytics; YOLOX → yolox. */
export function findBackend(
  text: string,
): { backend: 'builtin' | 'ultralytics' | 'yolox'; model?: string } | undefined {
  const yolox = /\byolo-?x(?:[-_ ]?(nano|tiny|s|m|l|x))?\b/i.exec(text);
  if (yolox !== null)
    return { backend: 'yolox', ...(yolox[1] ? { model: `yolox_${yolox[1].toLowerCase()}` } : {}) };
  const u = /\byolo\s*-?\s*(v?)(\d{1,2})([nsmlx])?\b/i.exec(text);
  if (u !== null) {
    const n = Number(u[2]);
    const size = u[3]?.toLowerCase();
    // Ultralytics names its weights yolov5…v10 (with "v") and yolo11, yolo12, yolo26 (without).
    const stem = n <= 10 ? `yolov${n}` : `yolo${n}`;
    return { backend: 'ultralytics', ...(size ? { model: `${stem}${size}.pt` } : {}) };
  }
  if (/\bultralytics\b/i.test(text)) return { backend: 'ultralytics' };
  if (/\bbuilt-?in\b/i.test(text)) return { backend: 'builtin' };
  return undefined;
}
