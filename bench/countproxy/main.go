// Command countproxy is a reverse proxy in front of a registry that logs
// every request with the bytes of its response body, so bench/remotecache.sh
// can count what a build downloaded. It prints its host:port on stdout once
// it listens.
//
//	countproxy -target 127.0.0.1:5000 -log requests.log
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
)

func main() {
	target := flag.String("target", "127.0.0.1:5000", "registry host:port (plain HTTP)")
	logPath := flag.String("log", "requests.log", "file to append one line per request to: METHOD PATH STATUS BYTES")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	var mu sync.Mutex
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: *target})
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(l.Addr().String())
	os.Stdout.Close()
	log.Fatal(http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &counter{ResponseWriter: w, status: 200}
		rp.ServeHTTP(cw, r)
		mu.Lock()
		fmt.Fprintf(f, "%s %s %d %d\n", r.Method, r.URL.Path, cw.status, cw.n)
		mu.Unlock()
	})))
}

type counter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (c *counter) WriteHeader(code int) {
	c.status = code
	c.ResponseWriter.WriteHeader(code)
}

func (c *counter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}
