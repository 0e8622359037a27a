package testenv

import "fmt"

// nginxConf is the template of NginxConf.
const nginxConf = `worker_processes 2;
error_log %[1]s/error.log notice;
pid %[1]s/nginx.pid;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen 127.0.0.1:%[2]d;
		location / { return 200 "%[3]s\n"; }
	}
	%[4]s
}
`

// NginxConf is a complete nginx configuration for a test: two workers,
// every path (the pid file and error.log too) in dir, port on 127.0.0.1, one
// location whose body says which version runs, and extra for more
// http-level directives (one that nginx -t refuses, say; usually empty).
func NginxConf(dir string, port int, body, extra string) string {
	return fmt.Sprintf(nginxConf, dir, port, body, extra)
}
