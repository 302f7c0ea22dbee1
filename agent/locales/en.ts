/** The agent's report and reply texts in English (i18next resources; `_one`/`_other` are plural forms). */
export const en = {
  report: {
    nothingPlanned: 'Nothing was planned.',
    nothingToDo: 'Nothing to do.',
    head: {
      gated: 'Stopped: {{done}} of {{total}} steps completed.',
      done: 'Done: {{done}} of {{total}} steps completed.',
      stopped: 'Stopped after a rejection: {{done}} of {{total}} steps completed.',
      failed: 'Stopped on a failure: {{done}} of {{total}} steps completed.',
      running: '{{done}} of {{total}} steps completed so far.',
    },
    stepDone: '{{tool}}: done',
    approvedBy: 'approved by {{name}} ({{role}})',
    editedApprovedBy: 'edited and approved by {{name}} ({{role}})',
    rejectedBy: 'by {{name}}',
    replayed: '(already run before a restart; recorded result used)',
  },
  state: {
    pending: 'not run',
    awaiting_approval: 'waiting for approval',
    approved: 'approved, not run yet',
    rejected: 'rejected',
    running: 'running',
    done: 'done',
    failed: 'failed',
    waiting: 'waiting',
    skipped: 'skipped',
  },
  figures: {
    rolledBack: 'rolled back: {{count}} devices on their previous model',
    rolledBackOf: 'rolled back: {{count}} of {{total}} devices on their previous model',
    updated_one: '{{count}} device updated',
    updated_other: '{{count, number}} devices updated',
    updatedOf_one: '{{count}} device updated of {{total}}',
    updatedOf_other: '{{count, number}} devices updated of {{total}}',
    modelVersion: 'model version {{model}}',
  },
  findings: {
    found_one: 'Found {{count}} {{noun}}:',
    found_other: 'Found {{count, number}} {{noun}}:',
    none: 'No {{noun}} found.',
    more: '… and {{count, number}} more.',
    unnamed: '(unnamed)',
  },
  details: {
    version: 'v{{n}}',
    health: 'health {{value}}',
    model: 'model {{value}}',
    noModel: 'no model',
    dataset: 'dataset {{value}}',
    images_one: '{{count}} image',
    images_other: '{{count, number}} images',
    boxes_one: '{{count}} box',
    boxes_other: '{{count, number}} boxes',
    fps: '{{value}} fps',
    p95: 'p95 {{value}} ms',
    classes: 'classes {{value}}',
    risk: '{{value}} risk',
  },
  planner: {
    willNot: 'Understood: I will not do that ({{what}}). Nothing was planned.',
    cantApprove:
      'I can\'t approve or reject steps: a person decides each approval on its card (web chat, Slack or MCP), or with "/vision approve ID". Say "what approvals are pending?" to see them.',
    cantApproveShort:
      "I can't approve or reject steps: a person decides each approval on its card (web chat, Slack or MCP).",
    cantDo:
      "I can't {{verb}} anything: there is no tool for that, on purpose. Here is what I can do: {{capabilities}}",
    notUnderstood: 'I did not understand that. {{capabilities}}',
    clarify: 'Do you want me to {{first}} or to {{second}}?',
    notPlannedAsSaid: 'Not planned, as you said: {{what}}.',
    stopped: 'Stopped: step {{n}} ({{tool}}) was rejected.',
    stoppedReason: 'Stopped: step {{n}} ({{tool}}) was rejected: "{{reason}}".',
    questionReadsOnly:
      'That reads as a question, so I only look things up; ask me to do it if you want the change.',
    lookupChangedNothing:
      'That reads as a request to look something up, so I changed nothing; ask me to do it if you want the change.',
    questionChangedNothing:
      'That reads as a question, so I changed nothing; ask me to do it if you want the change.',
    capabilities:
      'I can train ("train a detector on dataset helmets-v2 for 20 epochs"), deploy ("deploy helmets@3 to line 3"), roll back, pause or resume a rollout, ' +
      'report status ("status of the training"), list or search (datasets, models, devices), compare ("compare helmets@2 and helmets@3"), evaluate, promote, ' +
      'and explain runs, models and rollouts. Korean works too ("helmets-v2 데이터셋으로 학습하고 3번 라인에 배포해줘").',
  },
};
