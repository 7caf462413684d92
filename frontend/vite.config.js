import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` serves the UI on :5173 and forwards the API to Flask (`make run`) on :5000.
const backend = process.env.PUNCTUAL_API || "http://127.0.0.1:5000";

export default defineConfig({
  plugins: [react()],
  build: { chunkSizeWarningLimit: 1000 },
  server: {
    proxy: {
      "/api": backend,
      "/healthz": backend,
    },
  },
  test: {
    environment: "jsdom",
    // One jsdom per worker, not per file: 9 s instead of 30 s, most of which was building
    // fourteen jsdoms. Each file cleans up what it renders; the suite passed shuffled on one worker.
    isolate: false,
    include: ["src/**/*.test.{js,jsx}"],
  },
});
