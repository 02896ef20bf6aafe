package replay

import (
	"context"

	"github.com/iii-go/iii/history"
	"github.com/iii-go/iii/log"
)

// The tests read log directories; these name the Source forms for them.

func Records(dir string, f history.Filter, fn func(*log.Record) error) error {
	return RecordsProgress(dirSource(dir), f, nil, fn)
}

func Follow(ctx context.Context, dir string, f history.Filter, fn func(*log.Record) error, caughtUp func() error) error {
	return FollowSource(ctx, dirSource(dir), f, fn, caughtUp)
}

func Diff(dir string, from, to Point) ([]ItemChange, error) {
	return DiffSource(DirSource(dir), from, to)
}

func ViewAt(dir string, at Point) (*View, error) { return ViewAtSource(DirSource(dir), at) }
