import { useState } from 'preact/hooks';

/** Asks for an API token (a READ token is enough to look). */
export function TokenForm({
  error,
  onToken,
}: {
  error: string | null;
  onToken: (t: string) => void;
}) {
  const [value, setValue] = useState('');
  return (
    <form
      class="token-form"
      onSubmit={(event) => {
        event.preventDefault();
        if (value.trim()) onToken(value.trim());
      }}
    >
      <h1>Sign in</h1>
      <p>
        This runstate checks API tokens. Paste one (a <code>READ</code> token is enough); it is kept
        for this tab only.
      </p>
      <label for="token">API token</label>
      <input
        id="token"
        type="password"
        autoComplete="off"
        value={value}
        onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        autoFocus
      />
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <button type="submit">Open the dashboard</button>
      <p class="muted">
        Create one with <code>npx runstate token create --name dashboard --role READ</code>.
      </p>
    </form>
  );
}
