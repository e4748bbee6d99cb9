package cmd_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
)

// Peak RSS of a child is measured through a small proxy process. On Linux
// a child started by a large process reports a ru_maxrss of at least its
// parent's: Go starts children with vfork, and exec seeds the child's peak
// from the memory it shared with the parent until then. The proxy is this
// test binary re-executed before it has grown; the measured command is its
// child, whose peak starts from the proxy's few megabytes.
const (
	rssProxyEnv = "QKV_TEST_RSS_PROXY" // the file the proxy writes the child's peak RSS (bytes) to
)

// rssProxyMain runs the proxy when this process was started as one; it
// returns only when it was not.
func rssProxyMain() {
	out := os.Getenv(rssProxyEnv)
	if out == "" {
		return
	}
	c := exec.Command(os.Args[1], os.Args[2:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	c.Env = os.Environ()
	err := c.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		fmt.Fprintln(os.Stderr, "rss proxy:", err)
		os.Exit(125)
	}
	var rss int64 = -1
	if _, peak, ok := childUsage(c.ProcessState); ok {
		rss = peak
	}
	if err := os.WriteFile(out, []byte(strconv.FormatInt(rss, 10)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "rss proxy:", err)
		os.Exit(125)
	}
	os.Exit(c.ProcessState.ExitCode())
}
