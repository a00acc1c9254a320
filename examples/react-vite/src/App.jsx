import { useState } from 'react';
import { Link, Route, Routes, useParams } from 'react-router';
import { api, signIn, signOut, useSession } from './session.jsx';

export function App() {
  const session = useSession();
  return (
    <main>
      <header>
        <h1 data-testid="title">React + Vite behind bff-gateway</h1>
        <nav>
          <Link to="/">Home</Link> · <Link to="/users/john.doe">john.doe</Link>
        </nav>
        <Account session={session} />
      </header>
      <Routes>
        <Route path="/" element={<Home />} />
        {/* a dotted parameter: the gateway serves index.html for any navigation without a file */}
        <Route path="/users/:userId" element={<User />} />
        <Route path="*" element={<p data-testid="not-found">No such page in the app.</p>} />
      </Routes>
    </main>
  );
}

function Account({ session }) {
  switch (session.status) {
    case 'loading':
      return <p data-testid="loading">Loading…</p>;
    case 'signed-in':
      return (
        <p data-testid="signed-in">
          Signed in as <strong data-testid="user-name">{session.me.claims.name ?? session.me.sub}</strong>{' '}
          <button type="button" data-testid="sign-out" onClick={() => signOut(session.me)}>Sign out</button>
        </p>
      );
    case 'signed-out':
      return (
        <p data-testid="signed-out">
          <button type="button" data-testid="sign-in" onClick={() => signIn()}>Sign in</button>
        </p>
      );
    default:
      return <p data-testid="error" role="alert">{session.title}</p>;
  }
}

function Home() {
  return <p data-testid="home">Welcome. Open a user page, or call the API once signed in.</p>;
}

function User() {
  const { userId } = useParams();
  const session = useSession();
  const [answer, setAnswer] = useState(undefined);
  const [problem, setProblem] = useState(undefined);

  async function callApi() {
    try {
      setAnswer(await api('/api/whoami'));
      setProblem(undefined);
    } catch (error) {
      setProblem(error.title ?? 'The gateway cannot be reached.');
      if (error.status === 401) session.setSignedOut();
    }
  }

  return (
    <section>
      <h2 data-testid="user-id">{userId}</h2>
      {session.status === 'signed-in' && (
        <button type="button" data-testid="call-api" onClick={() => void callApi()}>Call the API</button>
      )}
      {answer !== undefined && <p data-testid="api-sub">{answer.sub}</p>}
      {problem !== undefined && <p data-testid="api-problem" role="alert">{problem}</p>}
    </section>
  );
}
