package shard

// Owner returns the desired owner of key among members by rendezvous
// (highest random weight) hashing: each member scores the key and the
// highest score wins, ties going to the smaller member id. Every instance
// computes the same answer from the same member set, with no
// coordination. When a member joins, the only keys that move are those it
// now scores highest, about 1/(n+1) of them; when one leaves, only its
// keys move, spread over the rest. Owner returns "" for no members.
func Owner(members []string, key string) string {
	best, bestW := "", uint64(0)
	for _, m := range members {
		w := weight(m, key)
		if best == "" || w > bestW || (w == bestW && m < best) {
			best, bestW = m, w
		}
	}
	return best
}

// weight scores (member, key): FNV-1a over member, a zero byte and key,
// then the splitmix64 finalizer, whose avalanche makes the scores of one
// key across members independent enough for an even spread (plain FNV-1a
// of similar ids is not).
func weight(member, key string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(member); i++ {
		h ^= uint64(member[i])
		h *= prime
	}
	h *= prime // the separator byte 0
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
