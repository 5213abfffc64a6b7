package logtest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBufferCountsLinesWrittenConcurrently(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { fmt.Fprintf(&b, "level=INFO msg=sent n=%d\n", i) })
	}
	wg.Wait()
	fmt.Fprintln(&b, "level=WARN msg=refused")
	require.Equal(t, 51, b.Count())
	require.Equal(t, 50, b.Count("msg=sent"))
	require.Equal(t, 1, b.Count("msg=sent", "n=7"))
	require.Zero(t, b.Count("msg=sent", "WARN"))
	require.Contains(t, b.String(), "msg=refused")
}
