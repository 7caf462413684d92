import { Link } from "react-router-dom";
import { useAuth } from "../auth.jsx";

/** Signed out: a link to sign in "to `what`"; signed in, nothing. */
export function NeedSignIn({ what }) {
  const { signedIn } = useAuth();
  if (signedIn) return null;
  return (
    <p className="notice">
      <Link to="/signin">Sign in</Link> to {what}.
    </p>
  );
}
