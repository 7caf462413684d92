import { Link, Navigate, NavLink, Route, Routes } from "react-router-dom";
import { useAuth } from "./auth.jsx";
import SignIn from "./pages/SignIn.jsx";
import Polls from "./pages/Polls.jsx";
import PollNew from "./pages/PollNew.jsx";
import PollDetail from "./pages/PollDetail.jsx";
import Devices from "./pages/Devices.jsx";
import DeviceDetail from "./pages/DeviceDetail.jsx";
import Locations from "./pages/Locations.jsx";
import Jobs from "./pages/Jobs.jsx";

export default function App() {
  const { signedIn, username, signOut } = useAuth();
  return (
    <>
      <header className="topbar">
        <Link to="/" className="brand">
          Punctual
        </Link>
        <nav aria-label="Main">
          <NavLink to="/polls">Polls</NavLink>
          <NavLink to="/devices">Devices</NavLink>
          <NavLink to="/locations">Locations</NavLink>
          <NavLink to="/jobs">Jobs</NavLink>
        </nav>
        <div className="session">
          {signedIn ? (
            <>
              <span data-testid="signed-in-as">Signed in as {username}</span>
              <button type="button" className="link-button" onClick={signOut}>
                Sign out
              </button>
            </>
          ) : (
            <>
              <NavLink to="/signin">Sign in</NavLink>
              <NavLink to="/signup">Sign up</NavLink>
            </>
          )}
        </div>
      </header>
      <main>
        <Routes>
          <Route path="/" element={<Navigate to="/polls" replace />} />
          <Route path="/signin" element={<SignIn mode="signin" />} />
          <Route path="/signup" element={<SignIn mode="signup" />} />
          <Route path="/polls" element={<Polls />} />
          <Route path="/polls/new" element={<PollNew />} />
          <Route path="/polls/:id" element={<PollDetail />} />
          <Route path="/devices" element={<Devices />} />
          <Route path="/devices/:id" element={<DeviceDetail />} />
          <Route path="/locations" element={<Locations />} />
          <Route path="/jobs" element={<Jobs />} />
          <Route path="*" element={<p>Page not found. <Link to="/polls">Go to the polls</Link>.</p>} />
        </Routes>
      </main>
    </>
  );
}
