package shard

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"testing"
)

// refOwner is an independent rendezvous: hash/fnv over the same bytes, the
// splitmix64 finalizer written out, and the winner found by sorting.
func refOwner(members []string, key string) string {
	type scored struct {
		w  uint64
		id string
	}
	var all []scored
	for _, m := range members {
		h := fnv.New64a()
		h.Write([]byte(m))
		h.Write([]byte{0})
		h.Write([]byte(key))
		z := h.Sum64()
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		all = append(all, scored{z, m})
	}
	slices.SortFunc(all, func(a, b scored) int {
		if a.w != b.w {
			if a.w > b.w {
				return -1
			}
			return 1
		}
		if a.id < b.id {
			return -1
		}
		return 1
	})
	if len(all) == 0 {
		return ""
	}
	return all[0].id
}

func keys(n int) []string {
	k := make([]string, n)
	for i := range k {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(i))
		k[i] = fmt.Sprintf("spot.S%XUSDT", b)
	}
	return k
}

func TestOwnerMatchesReference(t *testing.T) {
	members := []string{"feed-a", "feed-b", "feed-c", "host-1-77-0a1f", "host-2-91-bb02"}
	for _, k := range keys(3000) {
		for n := 0; n <= len(members); n++ {
			if got, want := Owner(members[:n], k), refOwner(members[:n], k); got != want {
				t.Fatalf("Owner(%v, %s) = %q, reference %q", members[:n], k, got, want)
			}
		}
	}
}

// binomialOK reports whether count is within 5 standard deviations of
// n*p: a wrong spread fails, chance essentially never does.
func binomialOK(count, n int, p float64) bool {
	sd := math.Sqrt(float64(n) * p * (1 - p))
	return math.Abs(float64(count)-float64(n)*p) <= 5*sd
}

func TestOwnerMovesMinimally(t *testing.T) {
	ks := keys(4000)
	members := []string{"m1", "m2", "m3", "m4"}
	before := map[string]string{}
	share := map[string]int{}
	for _, k := range ks {
		before[k] = Owner(members, k)
		share[before[k]]++
	}
	for _, m := range members {
		if !binomialOK(share[m], len(ks), 0.25) {
			t.Errorf("uneven spread: %s owns %d of %d", m, share[m], len(ks))
		}
	}

	t.Run("MemberJoins", func(t *testing.T) {
		joined := append(slices.Clone(members), "m5")
		moved := 0
		for _, k := range ks {
			after := Owner(joined, k)
			if after != before[k] {
				moved++
				if after != "m5" {
					t.Fatalf("%s moved %s -> %s: only moves to the new member are allowed", k, before[k], after)
				}
			}
		}
		if !binomialOK(moved, len(ks), 0.2) {
			t.Errorf("%d of %d keys moved to the fifth member, want about a fifth", moved, len(ks))
		}
	})
	t.Run("MemberLeaves", func(t *testing.T) {
		left := []string{"m1", "m2", "m4"}
		for _, k := range ks {
			after := Owner(left, k)
			if before[k] != "m3" && after != before[k] {
				t.Fatalf("%s moved %s -> %s though its owner stayed", k, before[k], after)
			}
		}
	})
	t.Run("OrderDoesNotMatter", func(t *testing.T) {
		rev := []string{"m4", "m3", "m2", "m1"}
		for _, k := range ks {
			if Owner(rev, k) != before[k] {
				t.Fatalf("%s: owner depends on the member list's order", k)
			}
		}
	})
}
