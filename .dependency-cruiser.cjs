// The floors of docs/architecture.md, enforced by `npm run check` (depcruise). Test files and test
// support may reach up (a test of the edge runner builds a platform to talk to); source may not.
const TEST = '(\\.test\\.ts$|\\.fixtures\\.ts$|\\.contract\\.ts$|^test/)';
const FRONT = '^(web-chat|mcp-server)/';
const DOMAINS = '^services/(?!infra/)';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'An import circle between files: split the shared part into its own file (types into model.ts).',
      from: {},
      to: { circular: true },
    },
    {
      name: 'core-is-the-floor',
      severity: 'error',
      comment: 'core/ imports npm packages and core/ only.',
      from: { path: '^core/', pathNot: TEST },
      to: { path: '^(?!core/)', dependencyTypesNot: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'core'] },
    },
    {
      name: 'protocol-on-core',
      severity: 'error',
      comment: 'protocol/ (the wire format between platform and workers) imports core/ only.',
      from: { path: '^protocol/', pathNot: TEST },
      to: {
        path: '^(?!core/|protocol/)',
        dependencyTypesNot: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'core'],
      },
    },
    {
      name: 'workers-and-vision-below-the-domain',
      severity: 'error',
      comment:
        'vision/, gpu-runner/ and edge-runner/ are packaged without the platform: they import core/, protocol/, vision/ and the broker and storage ports only.',
      from: { path: '^(vision|gpu-runner|edge-runner)/', pathNot: TEST },
      to: {
        path: `(${DOMAINS}|^agent/|^tools/|${FRONT}|^app/|^bin/|^services/infra/(db|cache|search|auth)/)`,
      },
    },
    {
      name: 'services-below-tools-and-agent',
      severity: 'error',
      comment: 'services/ never imports the agent, the tools, the front ends or the composition root.',
      from: { path: '^services/', pathNot: TEST },
      to: { path: `(^agent/|^tools/|${FRONT}|^app/|^bin/)` },
    },
    {
      name: 'tools-below-agent',
      severity: 'error',
      from: { path: '^tools/', pathNot: TEST },
      to: { path: `(^agent/|${FRONT}|^app/|^bin/)` },
    },
    {
      name: 'agent-below-front-ends',
      severity: 'error',
      from: { path: '^agent/', pathNot: TEST },
      to: { path: `(${FRONT}|^app/|^bin/)` },
    },
    {
      name: 'front-ends-below-app',
      severity: 'error',
      comment:
        'Front ends receive their services from app/; they do not build the platform or read configuration.',
      from: { path: FRONT, pathNot: TEST },
      to: { path: '(^app/|^bin/)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^node_modules|^data/|^web-chat/public/|^coverage/)' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js'],
    },
  },
};
