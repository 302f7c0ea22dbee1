/** The words of the model page's evaluation and "try on an image", in English and Korean; i18n.js merges them. */
export const PAGE_TEXT = {
  en: {
    'models.evaluationHeading': 'Latest evaluation',
    'models.noEvaluationYet':
      'No evaluation yet: evaluate this version to see AP per class, PR curves and a confusion matrix.',
    'models.latestEvaluation':
      'On {dataset}, {split} split, {images} images, boxes kept from confidence {conf}.',
    'models.apPerClass': 'AP per class',
    'models.instances': 'Boxes',
    'models.prCurve': 'Precision–recall (IoU 0.5)',
    'models.noCurve': 'This evaluation has no curve; evaluate again to draw one.',
    'models.confusion': 'Confusion matrix',
    'models.confusionHelp':
      'Rows are what is in the image, columns what the model said. "Background" counts missed boxes (row) and detections of nothing (column).',
    'models.noConfusion': 'This evaluation has no confusion matrix; evaluate again to see one.',
    'models.background': 'background',
    'models.actualPredicted': 'actual ↓ / predicted →',
    'models.tryHeading': 'Try on an image',
    'models.tryHelp': 'The image is only used for this check and is not kept.',
    'models.tryPick': 'Image (JPEG, PNG or WebP, up to 10 MB)',
    'models.tryConf': 'Minimum confidence',
    'models.tryDrop': 'or drop an image here',
    'models.trying': 'Running the model…',
    'models.tryFound': '{n} objects found in {ms} ms.',
    'models.tryTooBig': 'This image is over 10 MB; choose a smaller one.',
  },
  ko: {
    'models.evaluationHeading': '최근 평가',
    'models.noEvaluationYet':
      '아직 평가가 없습니다. 이 버전을 평가하면 클래스별 AP, PR 곡선, 혼동 행렬을 볼 수 있습니다.',
    'models.latestEvaluation': '{dataset}의 {split} 분할 이미지 {images}장, 신뢰도 {conf} 이상의 박스 기준.',
    'models.apPerClass': '클래스별 AP',
    'models.instances': '박스',
    'models.prCurve': '정밀도–재현율 (IoU 0.5)',
    'models.noCurve': '이 평가에는 곡선이 없습니다. 다시 평가하면 그려집니다.',
    'models.confusion': '혼동 행렬',
    'models.confusionHelp':
      '행은 이미지에 실제로 있는 것, 열은 모델의 답입니다. "배경"은 놓친 박스(행)와 아무것도 없는 곳의 검출(열)입니다.',
    'models.noConfusion': '이 평가에는 혼동 행렬이 없습니다. 다시 평가하면 볼 수 있습니다.',
    'models.background': '배경',
    'models.actualPredicted': '실제 ↓ / 예측 →',
    'models.tryHeading': '이미지로 시험하기',
    'models.tryHelp': '이미지는 이 확인에만 쓰이고 저장되지 않습니다.',
    'models.tryPick': '이미지 (JPEG, PNG, WebP, 최대 10 MB)',
    'models.tryConf': '최소 신뢰도',
    'models.tryDrop': '또는 여기에 이미지를 끌어다 놓으세요',
    'models.trying': '모델 실행 중…',
    'models.tryFound': '객체 {n}개를 {ms} ms 만에 찾았습니다.',
    'models.tryTooBig': '이미지가 10 MB를 넘습니다. 더 작은 이미지를 고르세요.',
  },
};
