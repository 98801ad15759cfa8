using System.Net.Sockets;
using System.Threading.Channels;
using Containerd.Events;
using Containerd.Services.Events.Ttrpc.V1;
using Google.Protobuf.WellKnownTypes;
using Shim.Core.Events;
using Shim.Protos;
using Shim.Ttrpc;

namespace Shim.Core.Tests.Events;

/// <summary>The publisher against a real ttrpc server standing in for containerd's events service.</summary>
public sealed class TtrpcEventPublisherTests : IAsyncDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private readonly string _directory = Directory.CreateTempSubdirectory("rcs-events-").FullName;
    private readonly Socket _listener;
    private readonly TtrpcServer _server;
    private readonly Task _serving;
    private readonly Channel<string> _accepted = Channel.CreateUnbounded<string>();
    private readonly List<string> _attempts = []; // guarded by itself

    /// <summary>What containerd answers to the next Forward of a topic; absent = OK.</summary>
    private readonly Dictionary<string, Queue<StatusCode>> _answers = []; // guarded by _attempts

    public TtrpcEventPublisherTests()
    {
        string socket = Path.Combine(_directory, "containerd.sock.ttrpc");
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(socket));
        _listener.Listen(16);
        var registry = new TtrpcServiceRegistry();
        registry.Register("containerd.services.events.ttrpc.v1.Events", "Forward", ForwardRequest.Parser, (ForwardRequest request, TtrpcCallContext _) =>
        {
            string topic = request.Envelope.Topic;
            lock (_attempts)
            {
                _attempts.Add(topic);
                if (_answers.TryGetValue(topic, out var answers) && answers.TryDequeue(out var code))
                {
                    throw new TtrpcException(code, $"answered {code} for {topic}");
                }
            }
            _accepted.Writer.TryWrite(topic);
            return ValueTask.FromResult(new Empty());
        });
        _server = new TtrpcServer(registry);
        _serving = _server.ServeAsync(_listener, CancellationToken.None);
        SocketPath = socket;
    }

    private string SocketPath { get; }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private void Answer(string topic, params StatusCode[] codes)
    {
        lock (_attempts)
        {
            _answers[topic] = new Queue<StatusCode>(codes);
        }
    }

    private int Attempts(string topic)
    {
        lock (_attempts)
        {
            return _attempts.Count(t => t == topic);
        }
    }

    private async Task<List<string>> AcceptedAsync(int count)
    {
        var topics = new List<string>();
        while (topics.Count < count)
        {
            topics.Add(await _accepted.Reader.ReadAsync(Ct).AsTask().WaitAsync(Patience, Ct));
        }
        return topics;
    }

    [Theory]
    [InlineData(StatusCode.InvalidArgument)]
    [InlineData(StatusCode.ResourceExhausted)]
    public async Task An_event_containerd_rejects_is_dropped_and_the_exit_behind_it_is_delivered(StatusCode rejection)
    {
        Answer(EventTopics.TaskExecAdded, rejection, rejection, rejection, rejection, rejection, rejection, rejection, rejection);
        await using var publisher = new TtrpcEventPublisher(SocketPath, "ns1");

        publisher.Publish(new TaskExecAdded { ContainerId = "c1", ExecId = "e1" });
        publisher.Publish(new TaskExit { ContainerId = "c1", Id = "c1", Pid = 42, ExitStatus = 3 });

        Assert.Equal([EventTopics.TaskExit], await AcceptedAsync(1));
        Assert.Equal(1, Attempts(EventTopics.TaskExecAdded));
        Assert.Equal(1, publisher.Rejected);
    }

    [Fact]
    public async Task A_transient_failure_is_retried_and_order_is_kept()
    {
        Answer(EventTopics.TaskStart, StatusCode.Unavailable, StatusCode.DeadlineExceeded);
        await using var publisher = new TtrpcEventPublisher(SocketPath, "ns1");

        publisher.Publish(new TaskStart { ContainerId = "c1", Pid = 42 });
        publisher.Publish(new TaskExit { ContainerId = "c1", Id = "c1", Pid = 42, ExitStatus = 0 });

        Assert.Equal([EventTopics.TaskStart, EventTopics.TaskExit], await AcceptedAsync(2));
        Assert.Equal(3, Attempts(EventTopics.TaskStart));
        Assert.Equal(0, publisher.Rejected);
    }

    [Theory]
    [InlineData(StatusCode.InvalidArgument, true)]
    [InlineData(StatusCode.ResourceExhausted, true)]
    [InlineData(StatusCode.Unimplemented, true)]
    [InlineData(StatusCode.Unavailable, false)]
    [InlineData(StatusCode.DeadlineExceeded, false)]
    [InlineData(StatusCode.Unknown, false)]
    [InlineData(StatusCode.Internal, false)]
    public void Only_an_answer_a_retry_cannot_change_counts_as_a_rejection(StatusCode code, bool rejection) =>
        Assert.Equal(rejection, TtrpcEventPublisher.IsRejection(new TtrpcException(code, "x")));

    [Fact]
    public void A_connection_that_fails_is_not_a_rejection() =>
        Assert.False(TtrpcEventPublisher.IsRejection(new IOException("connection refused")));

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        await _serving;
        _listener.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
