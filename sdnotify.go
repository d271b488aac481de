// systemd's readiness protocol: a unit of Type=notify waits for READY=1 on
// the datagram socket $NOTIFY_SOCKET names.
package main

import (
	"fmt"
	"net"
	"strings"
)

// sdNotify sends state (e.g. "READY=1") to the socket named by socket (the
// value of $NOTIFY_SOCKET: a path, or "@name" for an abstract socket). An
// empty socket means not under systemd: nothing is sent.
func sdNotify(socket, state string) error {
	if socket == "" {
		return nil
	}
	name := socket
	if strings.HasPrefix(name, "@") {
		name = "\x00" + name[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify systemd on %s: %w", socket, err)
	}
	_, werr := conn.Write([]byte(state))
	cerr := conn.Close()
	if werr != nil {
		return fmt.Errorf("notify systemd on %s: %w", socket, werr)
	}
	if cerr != nil {
		return fmt.Errorf("notify systemd on %s: %w", socket, cerr)
	}
	return nil
}
