package feed

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// busyPolls are the Dialer settings every raw read test runs with: reads
// that wait in the poller, and reads that spin on the socket for longer
// than any test waits (so a deadline, a Close or a write lands mid-spin).
var busyPolls = []time.Duration{0, time.Minute}

// forEachBusyPoll runs f as a subtest per busyPolls entry.
func forEachBusyPoll(t *testing.T, f func(t *testing.T, busy time.Duration)) {
	for _, b := range busyPolls {
		t.Run("busypoll="+b.String(), func(t *testing.T) { f(t, b) })
	}
}

// dialPair returns a connection made by a Dialer and the server's end.
func dialPair(t *testing.T, busy time.Duration) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = Dialer{BusyPoll: busy}.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	if _, raw := client.(*rawReadConn); raw != (runtime.GOOS == "linux") {
		t.Fatalf("DialContext returned %T on %s", client, runtime.GOOS)
	}
	return client, server
}

// The raw reads deliver the bytes written, in order, whatever the read
// sizes, then io.EOF once the writer closes.
func TestRawReadConnDeliversEverything(t *testing.T) {
	forEachBusyPoll(t, func(t *testing.T, busy time.Duration) {
		client, server := dialPair(t, busy)
		defer client.Close()
		want := make([]byte, 4<<20)
		rng := rand.New(rand.NewPCG(3, 4))
		for i := range want {
			want[i] = byte(rng.Uint32())
		}
		wrng := rand.New(rand.NewPCG(5, 6)) // the writer's own: rng is the reader's
		go func() {
			defer server.Close()
			for rest := want; len(rest) > 0; {
				n := min(len(rest), 1+wrng.IntN(70000))
				if _, err := server.Write(rest[:n]); err != nil {
					return
				}
				rest = rest[n:]
			}
		}()
		var got []byte
		buf := make([]byte, 1<<16)
		for {
			n, err := client.Read(buf[:1+rng.IntN(len(buf))])
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("got %d bytes, want %d (or different)", len(got), len(want))
		}
		if n, err := client.Read(nil); n != 0 || err != nil {
			t.Fatalf("empty read: %d, %v", n, err)
		}
	})
}

// A read of data already there allocates nothing: the stream reader calls
// it for every frame.
func TestRawReadConnReadAllocs(t *testing.T) {
	forEachBusyPoll(t, func(t *testing.T, busy time.Duration) {
		client, server := dialPair(t, busy)
		defer client.Close()
		defer server.Close()
		msg := []byte("0123456789")
		buf := make([]byte, len(msg))
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := server.Write(msg); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(client, buf); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Fatalf("%v allocations per write and read", allocs)
		}
	})
}

// A read deadline ends a waiting read with a timeout, as net.TCPConn's
// does; the connection then still works.
func TestRawReadConnDeadline(t *testing.T) {
	forEachBusyPoll(t, func(t *testing.T, busy time.Duration) {
		client, server := dialPair(t, busy)
		defer client.Close()
		defer server.Close()
		if err := client.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err := client.Read(make([]byte, 10))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("read past the deadline: %v", err)
		}
		// A spinning read honours the deadline, not the end of its spin.
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("the read ended %v after it started, its deadline was 20ms", d)
		}
		if err := client.SetReadDeadline(time.Time{}); err != nil {
			t.Fatal(err)
		}
		if _, err := server.Write([]byte("ok")); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 2)
		if _, err := io.ReadFull(client, b); err != nil || string(b) != "ok" {
			t.Fatalf("after the deadline: %q, %v", b, err)
		}
	})
}

// Close from another goroutine ends a waiting read with net.ErrClosed,
// which is how feed ends a reader.
func TestRawReadConnCloseEndsRead(t *testing.T) {
	forEachBusyPoll(t, func(t *testing.T, busy time.Duration) {
		client, server := dialPair(t, busy)
		defer server.Close()
		done := make(chan error, 1)
		go func() {
			_, err := client.Read(make([]byte, 10))
			done <- err
		}()
		time.Sleep(20 * time.Millisecond) // let the read wait (a read that starts after Close fails the same way)
		client.Close()
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read after Close: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("read still waiting 10 s after Close")
		}
	})
}

// With one P, a read spinning on its socket still lets the goroutine that
// writes run (and every other one), and a spin that outlasts its budget
// waits in the poller for the data.
func TestRawReadConnBusyPollSharesTheP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, busy := range []time.Duration{time.Minute, time.Millisecond} {
		t.Run("busypoll="+busy.String(), func(t *testing.T) {
			client, server := dialPair(t, busy)
			defer client.Close()
			defer server.Close()
			got := make(chan string, 1)
			go func() {
				b := make([]byte, 5)
				if _, err := io.ReadFull(client, b); err != nil {
					got <- err.Error()
					return
				}
				got <- string(b)
			}()
			time.Sleep(50 * time.Millisecond) // on this P, while the reader spins (or, past 1ms, waits)
			if _, err := server.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			select {
			case s := <-got:
				if s != "hello" {
					t.Fatalf("read %q", s)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no read 10 s after the write")
			}
			if n := spinners.Load(); n != 0 {
				t.Fatalf("%d reads still counted as spinning after the read returned", n)
			}
		})
	}
}
