package fileop

import (
	"context"
	"os"
	"runtime"
	"sync"
)

// fileJob is one regular file to copy.
type fileJob struct {
	host, rel, target string
	fi                os.FileInfo
}

// filePool runs file copies on a few goroutines: the disk and the kernel's
// file creation, not the CPU, bound a copy, so a small pool (both cores of
// a small machine and a little more to cover blocking) is enough. The first
// error stops it; later jobs are dropped.
type filePool struct {
	ctx  context.Context
	run  func(fileJob) error
	jobs chan fileJob
	wg   sync.WaitGroup

	mu    sync.Mutex
	first error
}

// poolWorkers is the number of copy goroutines.
func poolWorkers() int {
	n := runtime.GOMAXPROCS(0) + 1
	if n > 4 {
		n = 4
	}
	return n
}

func newFilePool(ctx context.Context, run func(fileJob) error) *filePool {
	p := &filePool{ctx: ctx, run: run, jobs: make(chan fileJob, 256)}
	n := poolWorkers()
	p.wg.Add(n)
	for range n {
		go p.worker()
	}
	return p
}

func (p *filePool) worker() {
	defer p.wg.Done()
	for j := range p.jobs {
		if p.err() != nil {
			continue
		}
		err := p.ctx.Err()
		if err == nil {
			err = p.run(j)
		}
		if err != nil {
			p.mu.Lock()
			if p.first == nil {
				p.first = err
			}
			p.mu.Unlock()
		}
	}
}

// add queues a job (it blocks while the queue is full).
func (p *filePool) add(j fileJob) { p.jobs <- j }

// err is the first error of a job so far.
func (p *filePool) err() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.first
}

// wait finishes the queued jobs and returns the first error.
func (p *filePool) wait() error {
	close(p.jobs)
	p.wg.Wait()
	return p.err()
}
