/** Chat identities linked to accounts, and the one-time codes that confirm a link. */
export interface AccountLinkTables {
  chat_links: {
    id: string;
    /** `slack` or `mattermost`. */
    platform: string;
    team_id: string;
    /** Workspace (Slack) or team (Mattermost) name as the chat platform sent it. */
    team_name: string;
    chat_user_id: string;
    chat_user_name: string;
    /** The platform account the chat user acts as. */
    user_id: string;
    created_at: number;
  };
  chat_link_codes: {
    /** sha256 of the code; the code itself is only in the chat reply. */
    code_hash: string;
    platform: string;
    team_id: string;
    team_name: string;
    chat_user_id: string;
    chat_user_name: string;
    created_at: number;
    expires_at: number;
    /** Set when the code was confirmed; a used code never works again. */
    used_at: number | null;
  };
}
