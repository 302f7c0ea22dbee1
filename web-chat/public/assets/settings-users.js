import { api, h } from './api.js';
import { actionForm } from './actions.js';
import { currentLang, t } from './i18n.js';
import { fmtNumber, table } from './results.js';

const ROLES = ['viewer', 'operator', 'approver', 'admin'];

const read = async (tool, args = {}) =>
  (await api(`/api/tools/${tool}`, { method: 'POST', body: { args } })).output;

const input = (id, attrs) => h('input', { class: 'form-control form-control-sm', id, ...attrs });
const field = (label, control) =>
  h('label', { class: 'd-flex flex-column small' }, h('span', { text: label }), control);

/**
 * Settings → people and roles of this project, and the caller's projects: anyone sees them; an
 * admin adds a person with a role (or changes it) and creates a project, each through an approval
 * of that exact call (the membership service checks the admin role again).
 */
export async function usersSection(me) {
  const [{ members }, { projects }] = await Promise.all([read('list_members'), read('list_projects')]);
  const root = h('section', { class: 'mt-4', id: 'users-settings' });
  const redraw = async () => root.replaceWith(await usersSection(me));
  const admin = me.user.role === 'admin';
  const memberBox = h('div', { id: 'member-approval' });
  const projectBox = h('div', { id: 'project-approval' });
  const email = input('member-email', { type: 'email', required: true, placeholder: 'kim@example.com' });
  const name = input('member-name', { placeholder: t('members.name') });
  const role = h(
    'select',
    { class: 'form-select form-select-sm', id: 'member-role' },
    ROLES.map((r) => h('option', { value: r, text: t(`role.${r}`) })),
  );
  const projectId = input('project-id', { required: true, placeholder: t('projects.idHint') });
  const projectName = input('project-name', { required: true, placeholder: t('projects.nameHint') });
  const since = (iso) => new Date(iso).toLocaleDateString(currentLang() === 'ko' ? 'ko-KR' : 'en-US');
  root.append(
    h('h2', { class: 'h5', text: t('members.heading') }),
    h('p', { class: 'small text-body-secondary', text: t('members.help') }),
    table(
      ['members.name', 'members.email', 'members.role', 'members.since'],
      members.map((m) =>
        h(
          'tr',
          { dataset: { email: m.email } },
          h('td', { text: m.name }),
          h('td', { text: m.email }),
          h('td', { dataset: { role: m.role }, text: t(`role.${m.role}`) }),
          h('td', { class: 'small', text: since(m.since) }),
        ),
      ),
      { id: 'member-rows' },
    ),
    admin
      ? actionForm(memberBox, me, {
          id: 'member-form',
          tool: 'set_member_role',
          submit: t('members.add'),
          controls: [
            field(t('members.email'), email),
            field(t('members.name'), name),
            field(t('members.role'), role),
          ],
          argsOf: () => ({
            email: email.value.trim(),
            ...(name.value.trim() ? { name: name.value.trim() } : {}),
            role: role.value,
          }),
          reason: () => t('members.reason', { email: email.value.trim(), role: t(`role.${role.value}`) }),
          onDone: redraw,
        })
      : h('p', {
          class: 'small text-body-secondary',
          id: 'members-admin-only',
          text: t('members.adminOnly'),
        }),
    memberBox,
    h('h2', { class: 'h5 mt-4', text: t('projects.heading') }),
    table(
      ['projects.name', 'projects.id', 'projects.yourRole', 'projects.members'],
      projects.map((p) =>
        h(
          'tr',
          { dataset: { project: p.id } },
          h('td', { text: p.name }),
          h('td', { class: 'small text-body-secondary', text: p.id }),
          h('td', { text: t(`role.${p.role}`) }),
          h('td', { text: fmtNumber(p.members) }),
        ),
      ),
      { id: 'project-rows' },
    ),
    admin
      ? actionForm(projectBox, me, {
          id: 'project-form',
          tool: 'create_project',
          submit: t('projects.create'),
          controls: [field(t('projects.id'), projectId), field(t('projects.name'), projectName)],
          argsOf: () => ({ id: projectId.value.trim(), name: projectName.value.trim() }),
          reason: () => t('projects.reason', { name: projectName.value.trim() }),
          onDone: redraw,
        })
      : null,
    projectBox,
  );
  return root;
}
