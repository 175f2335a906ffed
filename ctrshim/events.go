package ctrshim

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	eventsapi "github.com/containerd/containerd/api/services/ttrpc/events/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/ttrpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Publisher forwards task events to containerd's ttrpc events service (the
// TTRPC_ADDRESS containerd gives a shim), in order, each tried a few times.
// Without /tasks/exit containerd's CRI never marks a container exited.
type Publisher struct {
	namespace string
	client    eventsapi.EventsService
	closer    func() error
	queue     chan *types.Envelope
	wg        sync.WaitGroup
	// mu guards closed, which Close sets: a task that ends while the shim
	// ends (its runs stopped after the Publisher closed) publishes
	// nothing, rather than sending on the closed queue.
	mu     sync.Mutex
	closed bool
}

// NewPublisher dials containerd's ttrpc address (a unix socket path, with
// or without unix://). A nil Publisher publishes nothing.
func NewPublisher(address, namespace string) (*Publisher, error) {
	conn, err := dialUnix(address)
	if err != nil {
		return nil, err
	}
	c := ttrpc.NewClient(conn)
	p := &Publisher{namespace: namespace, client: eventsapi.NewEventsClient(c), closer: c.Close, queue: make(chan *types.Envelope, 128)}
	p.wg.Add(1)
	go p.forward()
	return p, nil
}

// Publish queues the event under topic ("/tasks/exit").
func (p *Publisher) Publish(ctx context.Context, topic string, ev proto.Message) {
	if p == nil {
		return
	}
	b, err := proto.Marshal(ev)
	if err != nil {
		return
	}
	// containerd resolves the type by the message's full name, with no
	// type.googleapis.com/ prefix (its typeurl registry's form).
	any := &anypb.Any{TypeUrl: string(proto.MessageName(ev)), Value: b}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.queue <- &types.Envelope{Timestamp: timestamppb.Now(), Namespace: p.namespace, Topic: topic, Event: any}
}

func (p *Publisher) forward() {
	defer p.wg.Done()
	for env := range p.queue {
		md := ttrpc.MD{}
		md.Set("containerd-namespace-ttrpc", p.namespace)
		for try := 0; try < 5; try++ {
			ctx, cancel := context.WithTimeout(ttrpc.WithMetadata(context.Background(), md), 5*time.Second)
			_, err := p.client.Forward(ctx, &eventsapi.ForwardRequest{Envelope: env})
			cancel()
			if err == nil {
				break
			}
			if try == 4 {
				// The shim's stderr: containerd's log of it, or a warm
				// shim's log (EnvLog).
				fmt.Fprintf(os.Stderr, "containerd-shim-ampoule-v1: error: publishing %s: %v\n", env.Topic, err)
			}
			time.Sleep(time.Duration(try+1) * 50 * time.Millisecond)
		}
	}
}

// Close sends what is queued and closes the connection.
func (p *Publisher) Close() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.queue)
	}
	p.mu.Unlock()
	p.wg.Wait()
	return p.closer()
}
