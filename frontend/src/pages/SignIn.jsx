import { useState } from "react";
import { Link, useNavigate } from "react-router-dom";
import { useAuth } from "../auth.jsx";
import { ErrorMessage, FieldError } from "../components/Feedback.jsx";

export default function SignIn({ mode }) {
  const signup = mode === "signup";
  const { signIn, signUp } = useAuth();
  const navigate = useNavigate();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await (signup ? signUp : signIn)(username, password);
      navigate("/polls");
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  const fields = error?.fieldErrors || {};
  return (
    <section className="narrow">
      <h1>{signup ? "Create an account" : "Sign in"}</h1>
      <form onSubmit={submit} noValidate>
        <div className="field">
          <label htmlFor="username">Username</label>
          <input
            id="username"
            autoComplete="username"
            value={username}
            onChange={(e) => setUsername(e.target.value)}
            aria-describedby="username-error"
          />
          <FieldError id="username-error" error={fields.username} />
        </div>
        <div className="field">
          <label htmlFor="password">Password</label>
          <input
            id="password"
            type="password"
            autoComplete={signup ? "new-password" : "current-password"}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            aria-describedby="password-error"
          />
          <FieldError id="password-error" error={fields.password} />
        </div>
        <ErrorMessage error={error} />
        <button type="submit" disabled={busy}>
          {busy ? "Please wait…" : signup ? "Sign up" : "Sign in"}
        </button>
      </form>
      <p>
        {signup ? (
          <>
            Already have an account? <Link to="/signin">Sign in</Link>
          </>
        ) : (
          <>
            No account yet? <Link to="/signup">Sign up</Link> (or try demo / demo-password under
            make run)
          </>
        )}
      </p>
    </section>
  );
}
