// ctl_keys.go owns the keys commands of `etcdlite ctl` (get, set, mk,
// mkdir, setdir, rm, rmdir, ls, update, updatedir, watch, exec-watch): the
// keys API requests they send and their three output formats.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ctlNode is a node of a keys API answer, marshalled as etcd's client
// marshals it.
type ctlNode struct {
	Key           string     `json:"key"`
	Dir           bool       `json:"dir,omitempty"`
	Value         string     `json:"value"`
	Nodes         []*ctlNode `json:"nodes"`
	CreatedIndex  uint64     `json:"createdIndex"`
	ModifiedIndex uint64     `json:"modifiedIndex"`
	Expiration    *time.Time `json:"expiration,omitempty"`
	TTL           int64      `json:"ttl,omitempty"`
}

// ctlResponse is a keys API answer; Index is X-Etcd-Index.
type ctlResponse struct {
	Action   string   `json:"action"`
	Node     *ctlNode `json:"node"`
	PrevNode *ctlNode `json:"prevNode"`
	Index    uint64   `json:"-"`
}

// errCtlEmptyBody is a success answer without a body (a watch the server
// ended).
var errCtlEmptyBody = errors.New("client: response body is empty")

// keysRequest sends a keys API request and decodes its answer.
func (cl *ctlClient) keysRequest(ctx context.Context, r *ctlRequest) (*ctlResponse, error) {
	resp, body, err := cl.do(ctx, r)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated:
		if len(body) == 0 {
			return nil, errCtlEmptyBody
		}
		var res ctlResponse
		if err := json.Unmarshal(body, &res); err != nil {
			return nil, err
		}
		if res.Node == nil {
			res.Node = &ctlNode{}
		}
		res.Index, _ = strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
		return &res, nil
	default:
		var kerr keysAPIError
		if err := json.Unmarshal(body, &kerr); err != nil {
			return nil, err
		}
		return nil, &kerr
	}
}

// ctlKeyPath is the keys API path of key.
func ctlKeyPath(key string) string {
	if !strings.HasPrefix(key, "/") {
		key = "/" + key
	}
	return "/v2/keys" + key
}

// ctlSetOptions are the options of a PUT to the keys API.
type ctlSetOptions struct {
	ttl       int
	prevValue string
	prevIndex uint64
	prevExist string // "", "true" or "false"
	dir       bool
}

// set sends a PUT as etcd's client builds it.
func (cl *ctlClient) set(ctx context.Context, key, value string, o ctlSetOptions) (*ctlResponse, error) {
	q, form := url.Values{}, url.Values{}
	if o.dir {
		q.Set("dir", "true")
	} else {
		if o.prevValue != "" {
			q.Set("prevValue", o.prevValue)
		}
		form.Set("value", value)
	}
	if o.prevIndex != 0 {
		q.Set("prevIndex", strconv.FormatUint(o.prevIndex, 10))
	}
	if o.prevExist != "" {
		q.Set("prevExist", o.prevExist)
	}
	if o.ttl > 0 {
		form.Set("ttl", strconv.Itoa(o.ttl))
	}
	return cl.keysRequest(ctx, &ctlRequest{method: "PUT", path: ctlKeyPath(key), query: q, form: form})
}

// get sends a GET as etcd's client builds it.
func (cl *ctlClient) get(ctx context.Context, key string, recursive, sorted, quorum bool) (*ctlResponse, error) {
	q := url.Values{}
	q.Set("recursive", strconv.FormatBool(recursive))
	q.Set("sorted", strconv.FormatBool(sorted))
	q.Set("quorum", strconv.FormatBool(quorum))
	return cl.keysRequest(ctx, &ctlRequest{method: "GET", path: ctlKeyPath(key), query: q})
}

// ctlStdinValue is the value argument i, or all of stdin when it is not
// given.
func ctlStdinValue(c *ctlContext, i int) (string, error) {
	if len(c.args) > i {
		return c.args[i], nil
	}
	b, err := io.ReadAll(c.io.stdin)
	if err != nil {
		return "", err
	}
	if len(b) == 0 {
		return "", errors.New("no input")
	}
	return string(b), nil
}

// printResponseKey writes resp in the --output format.
func printResponseKey(c *ctlContext, resp *ctlResponse) {
	w := c.stdout()
	switch c.output() {
	case "simple":
		if resp.Action != "delete" {
			fmt.Fprintln(w, resp.Node.Value)
		} else {
			fmt.Fprintln(w, "PrevNode.Value:", resp.PrevNode.Value)
		}
	case "extended":
		fmt.Fprintln(w, "Key:", resp.Node.Key)
		fmt.Fprintln(w, "Created-Index:", resp.Node.CreatedIndex)
		fmt.Fprintln(w, "Modified-Index:", resp.Node.ModifiedIndex)
		if resp.PrevNode != nil {
			fmt.Fprintln(w, "PrevNode.Value:", resp.PrevNode.Value)
		}
		fmt.Fprintln(w, "TTL:", resp.Node.TTL)
		fmt.Fprintln(w, "Index:", resp.Index)
		if resp.Action != "delete" {
			fmt.Fprintln(w, "")
			fmt.Fprintln(w, resp.Node.Value)
		}
	case "json":
		b, err := json.Marshal(resp)
		if err != nil {
			fmt.Fprintln(c.stderr(), err)
			return
		}
		fmt.Fprintln(w, string(b))
	default:
		fmt.Fprintln(c.stderr(), "Unsupported output format:", c.output())
	}
}

// keysCommand builds the client, then runs f; like etcdctl, the client
// (and its sync) comes before the arguments are checked.
func keysCommand(c *ctlContext, f func(cl *ctlClient) int) int {
	cl, code := newClient(c)
	if cl == nil {
		return code
	}
	return f(cl)
}

// ctlGet is `get`.
func ctlGet(c *ctlContext) int {
	return keysCommand(c, func(cl *ctlClient) int {
		if len(c.args) == 0 {
			return c.handleError(ctlExitBadArgs, errors.New("key required"))
		}
		ctx, cancel := c.totalTimeout()
		resp, err := cl.get(ctx, c.args[0], false, c.Bool("sort"), c.Bool("quorum"))
		cancel()
		if err != nil {
			return c.handleError(ctlExitServerError, err)
		}
		if resp.Node.Dir {
			fmt.Fprintf(c.stderr(), "%s: is a directory\n", resp.Node.Key)
			return ctlExitBadArgs
		}
		printResponseKey(c, resp)
		return ctlExitSuccess
	})
}

// ctlSetLike is set, mk and update: a key, a value, options.
func ctlSetLike(c *ctlContext, opts func() ctlSetOptions, inOrder bool) int {
	return keysCommand(c, func(cl *ctlClient) int {
		if len(c.args) == 0 {
			return c.handleError(ctlExitBadArgs, errors.New("key required"))
		}
		value, err := ctlStdinValue(c, 1)
		if err != nil {
			return c.handleError(ctlExitBadArgs, errors.New("value required"))
		}
		o := opts()
		ctx, cancel := c.totalTimeout()
		var resp *ctlResponse
		if inOrder {
			form := url.Values{}
			form.Set("value", value)
			if o.ttl > 0 {
				form.Set("ttl", strconv.Itoa(o.ttl))
			}
			resp, err = cl.keysRequest(ctx, &ctlRequest{method: "POST", path: ctlKeyPath(c.args[0]), form: form})
		} else {
			resp, err = cl.set(ctx, c.args[0], value, o)
		}
		cancel()
		if err != nil {
			return c.handleError(ctlExitServerError, err)
		}
		printResponseKey(c, resp)
		return ctlExitSuccess
	})
}

// ctlSet is `set`.
func ctlSet(c *ctlContext) int {
	return ctlSetLike(c, func() ctlSetOptions {
		return ctlSetOptions{ttl: c.Int("ttl"), prevValue: c.String("swap-with-value"), prevIndex: uint64(c.Int("swap-with-index"))}
	}, false)
}

// ctlMk is `mk`.
func ctlMk(c *ctlContext) int {
	return ctlSetLike(c, func() ctlSetOptions {
		return ctlSetOptions{ttl: c.Int("ttl"), prevExist: "false"}
	}, c.Bool("in-order"))
}

// ctlUpdate is `update`.
func ctlUpdate(c *ctlContext) int {
	return ctlSetLike(c, func() ctlSetOptions {
		return ctlSetOptions{ttl: c.Int("ttl"), prevExist: "true"}
	}, false)
}

// ctlDirLike is mkdir, setdir and updatedir.
func ctlDirLike(c *ctlContext, prevExist string) int {
	return keysCommand(c, func(cl *ctlClient) int {
		if len(c.args) == 0 {
			return c.handleError(ctlExitBadArgs, errors.New("key required"))
		}
		ctx, cancel := c.totalTimeout()
		resp, err := cl.set(ctx, c.args[0], "", ctlSetOptions{ttl: c.Int("ttl"), dir: true, prevExist: prevExist})
		cancel()
		if err != nil {
			return c.handleError(ctlExitServerError, err)
		}
		if c.output() != "simple" {
			printResponseKey(c, resp)
		}
		return ctlExitSuccess
	})
}

// ctlMkdir is `mkdir`.
func ctlMkdir(c *ctlContext) int { return ctlDirLike(c, "false") }

// ctlSetdir is `setdir`.
func ctlSetdir(c *ctlContext) int { return ctlDirLike(c, "") }

// ctlUpdatedir is `updatedir`.
func ctlUpdatedir(c *ctlContext) int { return ctlDirLike(c, "true") }

// deleteKey sends a DELETE as etcd's client builds it.
func (cl *ctlClient) deleteKey(ctx context.Context, key, prevValue string, prevIndex uint64, dir, recursive bool) (*ctlResponse, error) {
	q := url.Values{}
	if prevValue != "" {
		q.Set("prevValue", prevValue)
	}
	if prevIndex != 0 {
		q.Set("prevIndex", strconv.FormatUint(prevIndex, 10))
	}
	if dir {
		q.Set("dir", "true")
	}
	if recursive {
		q.Set("recursive", "true")
	}
	return cl.keysRequest(ctx, &ctlRequest{method: "DELETE", path: ctlKeyPath(key), query: q})
}

// ctlRm is `rm`.
func ctlRm(c *ctlContext) int {
	return keysCommand(c, func(cl *ctlClient) int {
		if len(c.args) == 0 {
			return c.handleError(ctlExitBadArgs, errors.New("key required"))
		}
		return ctlDelete(c, cl, c.String("with-value"), uint64(c.Int("with-index")), c.Bool("dir"), c.Bool("recursive"))
	})
}

// ctlRmdir is `rmdir`.
func ctlRmdir(c *ctlContext) int {
	return keysCommand(c, func(cl *ctlClient) int {
		if len(c.args) == 0 {
			return c.handleError(ctlExitBadArgs, errors.New("key required"))
		}
		return ctlDelete(c, cl, "", 0, true, false)
	})
}

// ctlDelete deletes the key c.args[0] for rm and rmdir and prints the
// answer (a directory's only when the output is not simple).
func ctlDelete(c *ctlContext, cl *ctlClient, prevValue string, prevIndex uint64, dir, recursive bool) int {
	ctx, cancel := c.totalTimeout()
	resp, err := cl.deleteKey(ctx, c.args[0], prevValue, prevIndex, dir, recursive)
	cancel()
	if err != nil {
		return c.handleError(ctlExitServerError, err)
	}
	if !resp.Node.Dir || c.output() != "simple" {
		printResponseKey(c, resp)
	}
	return ctlExitSuccess
}

// ctlLs is `ls`.
func ctlLs(c *ctlContext) int {
	return keysCommand(c, func(cl *ctlClient) int {
		key := "/"
		if len(c.args) != 0 {
			key = c.args[0]
		}
		ctx, cancel := c.totalTimeout()
		resp, err := cl.get(ctx, key, c.Bool("recursive"), c.Bool("sort"), c.Bool("quorum"))
		cancel()
		if err != nil {
			return c.handleError(ctlExitServerError, err)
		}
		if c.output() != "simple" {
			printResponseKey(c, resp)
			return ctlExitSuccess
		}
		if !resp.Node.Dir {
			fmt.Fprintln(c.stdout(), resp.Node.Key)
		}
		slash := c.Bool("p")
		var walk func(n *ctlNode)
		walk = func(n *ctlNode) {
			if n.Dir && slash {
				fmt.Fprintf(c.stdout(), "%v/\n", n.Key)
			} else {
				fmt.Fprintln(c.stdout(), n.Key)
			}
			for _, ch := range n.Nodes {
				walk(ch)
			}
		}
		for _, n := range resp.Node.Nodes {
			walk(n)
		}
		return ctlExitSuccess
	})
}

// ctlWatcher waits for the events of a key one after another, as etcd's
// client does: each wait starts after the last event's index.
type ctlWatcher struct {
	cl        *ctlClient
	key       string
	recursive bool
	waitIndex uint64
}

// next waits for the next event.
func (w *ctlWatcher) next(ctx context.Context) (*ctlResponse, error) {
	for {
		q := url.Values{}
		q.Set("wait", "true")
		q.Set("waitIndex", strconv.FormatUint(w.waitIndex, 10))
		q.Set("recursive", strconv.FormatBool(w.recursive))
		resp, err := w.cl.keysRequest(ctx, &ctlRequest{method: "GET", path: ctlKeyPath(w.key), query: q})
		if errors.Is(err, errCtlEmptyBody) {
			continue
		}
		if err != nil {
			return nil, err
		}
		w.waitIndex = resp.Node.ModifiedIndex + 1
		return resp, nil
	}
}

// newWatcher watches key from after afterIndex (0: from now).
func newWatcher(cl *ctlClient, key string, afterIndex int, recursive bool) *ctlWatcher {
	w := &ctlWatcher{cl: cl, key: key, recursive: recursive}
	if afterIndex > 0 {
		w.waitIndex = uint64(afterIndex) + 1
	}
	return w
}

// ctlWatch is `watch`. An interrupt ends it with status 0.
func ctlWatch(c *ctlContext) int {
	return keysCommand(c, func(cl *ctlClient) int {
		if len(c.args) == 0 {
			return c.handleError(ctlExitBadArgs, errors.New("key required"))
		}
		recursive, forever := c.Bool("recursive"), c.Bool("forever")
		w := newWatcher(cl, c.args[0], c.Int("after-index"), recursive)
		for {
			resp, err := w.next(c.ctx)
			if err != nil {
				if c.ctx.Err() != nil {
					return ctlExitSuccess
				}
				return c.handleError(ctlExitServerError, err)
			}
			if resp.Node.Dir {
				continue
			}
			if recursive {
				fmt.Fprintf(c.stdout(), "[%s] %s\n", resp.Action, resp.Node.Key)
			}
			printResponseKey(c, resp)
			if !forever {
				return ctlExitSuccess
			}
		}
	})
}

// ctlExecWatch is `exec-watch`: it runs a command for each event, with the
// event in ETCD_WATCH_* variables. An interrupt ends it with status 0.
func ctlExecWatch(c *ctlContext) int {
	return keysCommand(c, func(cl *ctlClient) int {
		args := c.args
		if len(args) < 2 {
			return c.handleError(ctlExitBadArgs, errors.New("key and command to exec required"))
		}
		// etcdctl's argument handling: with a "--" after the key the command
		// follows it; otherwise (the parser moved "--" away) the key is the
		// last argument.
		var key string
		var cmdArgs []string
		sep := false
		for i, a := range args {
			if a == "--" && i != 0 {
				sep = true
				break
			}
		}
		if sep {
			key, cmdArgs = args[0], args[2:]
		} else {
			key, cmdArgs = args[len(args)-1], args[:len(args)-1]
		}
		w := newWatcher(cl, key, c.Int("after-index"), c.Bool("recursive"))
		var running sync.WaitGroup
		defer running.Wait()
		out, errw := sharedWriter(c.stdout()), sharedWriter(c.stderr())
		for {
			resp, err := w.next(c.ctx)
			if err != nil {
				if c.ctx.Err() != nil {
					return ctlExitSuccess
				}
				return c.handleError(ctlExitServerError, err)
			}
			if resp.Node.Dir {
				fmt.Fprintf(errw, "Ignored dir %s change\n", resp.Node.Key)
				continue
			}
			if len(cmdArgs) == 0 {
				fmt.Fprint(errw, "exec: no command")
				return ctlExitBadArgs
			}
			cmd := exec.Command(cmdArgs[0], cmdArgs[1:]...)
			cmd.Env = append(append([]string(nil), c.io.environ...),
				"ETCD_WATCH_ACTION="+resp.Action,
				fmt.Sprintf("ETCD_WATCH_MODIFIED_INDEX=%d", resp.Node.ModifiedIndex),
				"ETCD_WATCH_KEY="+resp.Node.Key,
				"ETCD_WATCH_VALUE="+resp.Node.Value)
			cmd.Stdout, cmd.Stderr = out, errw
			if err := cmd.Start(); err != nil {
				fmt.Fprint(errw, err.Error())
				return ctlExitBadArgs
			}
			running.Add(1)
			go func() {
				defer running.Done()
				_ = cmd.Wait() // the command's own status is not etcdctl's
			}()
		}
	})
}

// sharedWriter is w itself when it is a file (the commands then write to
// it directly), else w behind a lock.
func sharedWriter(w io.Writer) io.Writer {
	if f, ok := w.(*os.File); ok {
		return f
	}
	return &lockedWriter{w: w}
}

// lockedWriter serialises writes from concurrent commands.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// Write implements io.Writer.
func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
