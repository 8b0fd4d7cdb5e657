package service

// AddEventHook adds f to the hooks that receive every accepted trade and
// every closed bar (see Config.OnEvent; a hook set there keeps running,
// f runs after it). Like OnEvent, f is called under the data lock and must
// not block: the push hub copies the event and returns.
//
// It is safe while the service runs: it waits for the lifecycle lock (so no
// run starts or stops meanwhile) and the current run's data lock, under
// which hooks are called. Hooks cannot be removed; a hook whose consumer is
// gone should return at once. Config, which copies the configuration
// without a lock, must not run concurrently with AddEventHook: wire hooks
// before handing the service to other goroutines.
func (s *Service) AddEventHook(f func(Event)) {
	if f == nil {
		return
	}
	s.lc.Lock()
	defer s.lc.Unlock()
	if r := s.cur.Load(); r != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
	}
	prev := s.cfg.OnEvent
	if prev == nil {
		s.cfg.OnEvent = f
		return
	}
	s.cfg.OnEvent = func(e Event) {
		prev(e)
		f(e)
	}
}
