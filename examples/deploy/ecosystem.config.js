// PM2 process file for Grace. PM2 keeps the watchdog (`grace watch`) running and starts
// it at boot (`pm2 startup` + `pm2 save`); the watchdog runs serve, restarts it when it
// crashes or hangs, and honours the kill switch, so serve stopped with `grace stop`
// stays stopped across reboots until `grace start`.
//
//   sudo install -d -o "$USER" /var/log/grace
//   pm2 start examples/deploy/ecosystem.config.js
//   pm2 save && pm2 startup        # start at boot
//   grace --config /etc/grace/grace.toml --state-dir /var/lib/grace status
//   pm2 logs grace                 # or: grace --state-dir /var/lib/grace logs -f
//
// PM2's CPU and memory columns (`pm2 ls`, `pm2 monit`) are those of the process it
// started: the watchdog, a few MiB and near 0% CPU. Serve and its kernels are the
// watchdog's children, which PM2 does not count; `grace status` shows serve's CPU and
// memory, and serve's /metrics has them for Prometheus.
module.exports = {
  apps: [
    {
      name: "grace",
      script: "/usr/local/bin/grace",
      args: "--config /etc/grace/grace.toml --state-dir /var/lib/grace watch --port 8000",
      interpreter: "none",
      exec_mode: "fork",
      instances: 1,
      // PM2 restarts the watchdog if it dies; the watchdog restarts serve.
      autorestart: true,
      restart_delay: 1000,
      exp_backoff_restart_delay: 200,
      max_restarts: 50,
      min_uptime: "10s",
      // Exit status 2 is a bad configuration: restarting cannot fix it.
      stop_exit_codes: [2],
      // PM2 sends SIGINT then SIGKILL after kill_timeout; the watchdog stops serve
      // gracefully on SIGINT, so give it [watchdog] stop_timeout plus a margin.
      kill_timeout: 15000,
      // The watchdog is its own supervisor of serve: no file watching, no clustering.
      watch: false,
      // Output and errors apart: with GRACE_LOG_STDOUT=1 the watchdog and serve write
      // their INFO lines to stdout (out_file) and only warnings and errors to stderr
      // (error_file). Each line carries its own timestamp already.
      out_file: "/var/log/grace/out.log",
      error_file: "/var/log/grace/error.log",
      merge_logs: true,
      time: false,
      env: {
        GRACE_LOG_STDOUT: "1",
      },
    },
  ],
};
