package campaign

// lru is a bounded set of per-campaign records keyed by a string (an
// identity or a user), in least-recently-touched order. While it holds at
// most lruSmall records a lookup walks the list; past that a map indexes
// it. So the many single-message campaigns of ordinary mail cost one node
// and four words per set.
type lru[T any] struct {
	head, tail *node[T] // head: least recently touched
	n          int
	m          map[string]*node[T]
}

type node[T any] struct {
	key        string
	prev, next *node[T]
	v          T
}

const lruSmall = 8

func (l *lru[T]) get(key string) *node[T] {
	if l.m != nil {
		return l.m[key]
	}
	for e := l.tail; e != nil; e = e.prev {
		if e.key == key {
			return e
		}
	}
	return nil
}

// touch moves e to the most recent end.
func (l *lru[T]) touch(e *node[T]) {
	if l.tail == e {
		return
	}
	l.unlink(e)
	l.link(e)
}

func (l *lru[T]) link(e *node[T]) {
	e.prev, e.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
}

func (l *lru[T]) unlink(e *node[T]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// add inserts a new record for key (which must be absent) as the most
// recent, first dropping the least recent one when the set holds max
// records. It returns the new node and the dropped one, if any.
func (l *lru[T]) add(key string, max int) (added, dropped *node[T]) {
	if l.n >= max && l.head != nil {
		dropped = l.head
		l.remove(dropped)
	}
	e := &node[T]{key: key}
	l.link(e)
	l.n++
	switch {
	case l.m != nil:
		l.m[key] = e
	case l.n > lruSmall:
		l.m = make(map[string]*node[T], 2*lruSmall)
		for s := l.head; s != nil; s = s.next {
			l.m[s.key] = s
		}
	}
	return e, dropped
}

func (l *lru[T]) remove(e *node[T]) {
	l.unlink(e)
	l.n--
	if l.m != nil {
		delete(l.m, e.key)
	}
}
