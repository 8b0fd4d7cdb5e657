package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/sim"
)

// TestSelfAuditAgreesWithSimulator runs the periodic self-audit while the
// simulator streams: each fresh snapshot (the simulator's own book) is
// compared with the service's book at the same update id, and they must
// agree every time.
func TestSelfAuditAgreesWithSimulator(t *testing.T) {
	srv := startSim(t, sim.Config{Recording: recording(t, spotBTC...), Speed: 40, Paused: true})
	s := newService(t, srv, func(c *service.Config) {
		c.Flow = testFlow
		c.AuditInterval = 100 * time.Millisecond
		c.SnapshotLimit = 100
	})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer stopService(t, s)
	waitStatus(t, s, "streams connected", 10*time.Second, connected)
	srv.Play()
	waitFor(t, "10 audits", 30*time.Second, func() bool { return s.Status().Engine.Audits >= 10 })
	st := s.Status().Engine
	t.Logf("audits %d, skipped %d, mismatches %d", st.Audits, st.AuditSkipped, st.AuditMismatches)
	if st.AuditMismatches != 0 {
		t.Fatalf("%d of %d audits found the book differing from the simulator's", st.AuditMismatches, st.Audits)
	}
}
