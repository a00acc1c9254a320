import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// Nothing gateway-specific: no proxy, no HMR host or port, no allowedHosts, no base. The browser
// opens the gateway (PUBLIC_URL), which forwards everything outside /auth and /api to this dev
// server (SPA_UPSTREAM_URL), hot-reload WebSocket included, on the same origin as the app.
export default defineConfig({
  plugins: [react()],
});
