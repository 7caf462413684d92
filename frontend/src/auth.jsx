import { useQueryClient } from "@tanstack/react-query";
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState } from "react";
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

  // Signing in or out (or an expired token) starts a new session: nothing cached in the last one
  // may show in it, private data above all. Resetting drops every query's data; those still on
  // screen fetch again as the new user (or stay empty while disabled, signed out). This runs
  // after the pages' queries have seen `signedIn` change, so owner-only ones are already off.
  const queryClient = useQueryClient();
  const lastToken = useRef(session.token);
  useEffect(() => {
    if (lastToken.current === session.token) return;
    lastToken.current = session.token;
    queryClient.resetQueries();
  }, [session.token, queryClient]);

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
