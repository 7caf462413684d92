import { createContext, useCallback, useContext, useEffect, useMemo, useState } from "react";
import { api, getToken, getUsername, setSession } from "./api.js";

const AuthContext = createContext(null);

export function AuthProvider({ children }) {
  const [session, setSessionState] = useState(() => ({
    token: getToken(),
    username: getUsername(),
  }));

  useEffect(() => {
    const onSignedOut = () => setSessionState({ token: null, username: null });
    window.addEventListener("punctual:signed-out", onSignedOut);
    return () => window.removeEventListener("punctual:signed-out", onSignedOut);
  }, []);

  const signIn = useCallback(async (username, password) => {
    const { token } = await api.token(username, password);
    setSession(token, username);
    setSessionState({ token, username });
  }, []);

  const signUp = useCallback(
    async (username, password) => {
      await api.register(username, password);
      await signIn(username, password);
    },
    [signIn],
  );

  const signOut = useCallback(() => {
    setSession(null);
    setSessionState({ token: null, username: null });
  }, []);

  const value = useMemo(
    () => ({ ...session, signedIn: Boolean(session.token), signIn, signUp, signOut }),
    [session, signIn, signUp, signOut],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth() {
  return useContext(AuthContext);
}
