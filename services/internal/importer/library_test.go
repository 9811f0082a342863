package importer

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

func TestLibraryAdd(t *testing.T) {
	lib, kv := testLibrary(t)
	ctx := testCtx(t)
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	lib.now = func() time.Time { return now }
	job1, job2 := jobID(1), jobID(2)

	track := api.Track{Artist: "The Beatles", Title: "Yesterday", Album: "Help!", DurationSec: 125,
		Key: "ignored", JobID: "ignored"}
	steps := []struct {
		name  string
		job   string
		track api.Track
		want  AddOutcome
	}{
		{"new track", job1, track, AddedNow},
		{"same job retried", job1, track, AddedEarlier},
		{"same job, other spelling", job1, api.Track{Artist: "the  beatles", Title: "YESTERDAY"}, AddedEarlier},
		{"other job", job2, track, Existing},
		{"other job, other spelling", job2, api.Track{Artist: "THE BEATLES ", Title: " yesterday"}, Existing},
	}
	for _, s := range steps {
		got, err := lib.Add(ctx, "alice", s.job, s.track)
		if err != nil || got != s.want {
			t.Fatalf("%s: Add = %v, %v; want %v", s.name, got, err, s.want)
		}
	}

	// One key, never overwritten: it still says job1 made it, with job1's text.
	key := streams.TrackKey("alice", Identity(Entry{Artist: "The Beatles", Title: "Yesterday"}))
	entry, err := kv.Get(ctx, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if entry.Revision() != 1 {
		t.Errorf("key written %d times", entry.Revision())
	}
	var stored api.Track
	if err := json.Unmarshal(entry.Value(), &stored); err != nil {
		t.Fatal(err)
	}
	want := api.Track{Key: key, Artist: "The Beatles", Title: "Yesterday", Album: "Help!", DurationSec: 125, JobID: job1, AddedAt: now}
	if stored != want {
		t.Errorf("stored %+v, want %+v", stored, want)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(slices.Collect(chanSeq(keys.Keys()))); n != 1 {
		t.Errorf("bucket holds %d keys, want 1", n)
	}

	// A deleted track can be added again.
	if err := kv.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if got, err := lib.Add(ctx, "alice", job2, track); err != nil || got != AddedNow {
		t.Fatalf("after delete: Add = %v, %v; want AddedNow", got, err)
	}

	// Another owner has a library of its own.
	if got, err := lib.Add(ctx, "bob", job2, track); err != nil || got != AddedNow {
		t.Fatalf("bob: Add = %v, %v; want AddedNow", got, err)
	}
}

func TestLibraryAddUnreadableValueIsExisting(t *testing.T) {
	lib, kv := testLibrary(t)
	ctx := testCtx(t)
	track := api.Track{Artist: "A", Title: "B"}
	key := streams.TrackKey("alice", Identity(Entry{Artist: "A", Title: "B"}))
	if _, err := kv.Create(ctx, key, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if got, err := lib.Add(ctx, "alice", jobID(1), track); err != nil || got != Existing {
		t.Fatalf("Add = %v, %v; want Existing", got, err)
	}
	if entry, _ := kv.Get(ctx, key); string(entry.Value()) != "not json" {
		t.Fatalf("value overwritten: %q", entry.Value())
	}
}

func TestLibraryAddRejects(t *testing.T) {
	lib, _ := testLibrary(t)
	ctx := testCtx(t)
	cases := []struct {
		name, owner, job string
		track            api.Track
		err              error
	}{
		{"owner with a dot", "alice.bob", jobID(1), api.Track{Artist: "A", Title: "B"}, ErrInvalidInput},
		{"owner with a wildcard", "*", jobID(1), api.Track{Artist: "A", Title: "B"}, ErrInvalidInput},
		{"empty owner", "", jobID(1), api.Track{Artist: "A", Title: "B"}, ErrInvalidInput},
		{"empty job", "alice", "", api.Track{Artist: "A", Title: "B"}, ErrInvalidInput},
		{"no artist", "alice", jobID(1), api.Track{Artist: " ", Title: "B"}, ErrIncomplete},
		{"no title", "alice", jobID(1), api.Track{Artist: "A", Title: "\x00"}, ErrIncomplete},
	}
	for _, tc := range cases {
		got, err := lib.Add(ctx, tc.owner, tc.job, tc.track)
		if !errors.Is(err, tc.err) || got != 0 {
			t.Errorf("%s: Add = %v, %v; want %v", tc.name, got, err, tc.err)
		}
	}
}

func TestLibraryAddConcurrentJobs(t *testing.T) {
	lib, _ := testLibrary(t)
	ctx := testCtx(t)
	const jobs = 8
	outcomes := make([]AddOutcome, jobs)
	var wg sync.WaitGroup
	for i := range jobs {
		wg.Go(func() {
			var err error
			outcomes[i], err = lib.Add(ctx, "alice", jobID(i), api.Track{Artist: "A", Title: "B"})
			if err != nil {
				t.Errorf("job %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	counts := map[AddOutcome]int{}
	for _, o := range outcomes {
		counts[o]++
	}
	if counts[AddedNow] != 1 || counts[Existing] != jobs-1 {
		t.Fatalf("outcomes %v, want one AddedNow and %d Existing", counts, jobs-1)
	}
}

func TestLibraryList(t *testing.T) {
	lib, _ := testLibrary(t)
	ctx := testCtx(t)
	add := func(owner string, n int) []string {
		var keys []string
		for i := range n {
			tr := api.Track{Artist: fmt.Sprintf("%s artist %d", owner, i), Title: fmt.Sprintf("title %d", i)}
			if _, err := lib.Add(ctx, owner, jobID(1), tr); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, streams.TrackKey(owner, Identity(Entry{Artist: tr.Artist, Title: tr.Title})))
		}
		slices.Sort(keys)
		return keys
	}
	aliceKeys := add("alice", 25)
	alKeys := add("al", 3)
	bobKeys := add("bob", 4)
	add("alice-2", 2)

	// listAll pages through an owner's library and returns the keys in the order seen.
	listAll := func(owner string, limit int) ([]string, int) {
		var keys []string
		cursor, pages := "", 0
		for {
			page, err := lib.List(ctx, owner, cursor, limit)
			if err != nil {
				t.Fatalf("List(%s, %q, %d): %v", owner, cursor, limit, err)
			}
			pages++
			if len(page.Tracks) > limit {
				t.Fatalf("page of %d > limit %d", len(page.Tracks), limit)
			}
			for _, tr := range page.Tracks {
				if tr.Artist == "" || tr.Title == "" || tr.JobID != jobID(1) || tr.AddedAt.IsZero() {
					t.Errorf("incomplete track %+v", tr)
				}
				keys = append(keys, tr.Key)
			}
			if page.NextCursor == "" {
				return keys, pages
			}
			if page.NextCursor != keys[len(keys)-1] {
				t.Fatalf("NextCursor %q is not the last key %q", page.NextCursor, keys[len(keys)-1])
			}
			cursor = page.NextCursor
		}
	}

	cases := []struct {
		owner string
		limit int
		want  []string
		pages int
	}{
		{"alice", 10, aliceKeys, 3},
		{"alice", 25, aliceKeys, 1},
		{"alice", 24, aliceKeys, 2},
		{"alice", MaxListLimit, aliceKeys, 1},
		{"alice", 1, aliceKeys, 25},
		{"al", 2, alKeys, 2},
		{"bob", 500, bobKeys, 1},
		{"carol", 10, nil, 1},
	}
	for _, tc := range cases {
		got, pages := listAll(tc.owner, tc.limit)
		if !slices.Equal(got, tc.want) || pages != tc.pages {
			t.Errorf("List %s by %d: %d keys in %d pages, want %d in %d (sorted, no other owner's)",
				tc.owner, tc.limit, len(got), pages, len(tc.want), tc.pages)
		}
	}

	// An empty library is an empty list, not null.
	page, err := lib.List(ctx, "carol", "", 10)
	if err != nil || page.Tracks == nil || page.NextCursor != "" {
		t.Fatalf("empty list = %+v, %v", page, err)
	}
	// A cursor past the end gives an empty last page.
	page, err = lib.List(ctx, "alice", aliceKeys[len(aliceKeys)-1], 10)
	if err != nil || len(page.Tracks) != 0 || page.NextCursor != "" {
		t.Fatalf("past the end = %+v, %v", page, err)
	}
}

func TestLibraryListRejects(t *testing.T) {
	lib, _ := testLibrary(t)
	ctx := testCtx(t)
	if _, err := lib.Add(ctx, "bob", jobID(1), api.Track{Artist: "A", Title: "B"}); err != nil {
		t.Fatal(err)
	}
	bobKey := streams.TrackKey("bob", Identity(Entry{Artist: "A", Title: "B"}))
	cases := []struct {
		name, owner, cursor string
		limit               int
	}{
		{"limit 0", "alice", "", 0},
		{"limit too big", "alice", "", MaxListLimit + 1},
		{"negative limit", "alice", "", -1},
		{"bad owner", "alice.*", "", 10},
		{"wildcard owner", ">", "", 10},
		{"empty owner", "", "", 10},
		{"cursor of another owner", "alice", bobKey, 10},
		{"cursor of a prefix owner", "bo", bobKey, 10},
		{"cursor below the owner", "alice", "a", 10},
	}
	for _, tc := range cases {
		page, err := lib.List(ctx, tc.owner, tc.cursor, tc.limit)
		if !errors.Is(err, ErrInvalidInput) || len(page.Tracks) != 0 {
			t.Errorf("%s: List = %+v, %v; want ErrInvalidInput", tc.name, page, err)
		}
	}
}

func TestAddOutcomeString(t *testing.T) {
	for o, want := range map[AddOutcome]string{AddedNow: "added-now", AddedEarlier: "added-earlier", Existing: "existing", 0: "AddOutcome(0)"} {
		if o.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(o), o.String(), want)
		}
	}
}

// chanSeq ranges over a channel until it is closed.
func chanSeq[T any](c <-chan T) func(func(T) bool) {
	return func(yield func(T) bool) {
		for v := range c {
			if !yield(v) {
				return
			}
		}
	}
}
