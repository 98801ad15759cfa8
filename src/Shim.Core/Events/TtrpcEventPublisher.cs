using System.Threading.Channels;
using Containerd.Services.Events.Ttrpc.V1;
using Containerd.Types;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Core.Logging;
using Shim.Protos;
using Shim.Ttrpc;

namespace Shim.Core.Events;

/// <summary>
/// Forwards events over ttrpc to containerd's TTRPC_ADDRESS with one consumer, so order is kept.
/// A failed Forward is retried (reconnecting, with back-off) until it is delivered or the shim stops:
/// unlike the Go shim, nothing is dropped after five tries.
/// </summary>
public sealed class TtrpcEventPublisher : IEventPublisher, IAsyncDisposable
{
    private const string Service = "containerd.services.events.ttrpc.v1.Events";
    private static readonly TimeSpan ForwardTimeout = TimeSpan.FromSeconds(5);

    private readonly string _address;
    private readonly string _namespace;
    private readonly Channel<ForwardRequest> _queue = Channel.CreateUnbounded<ForwardRequest>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _consumer;
    private long _published;
    private long _delivered;
    private TtrpcClient? _client;

    /// <summary>Starts the consumer for containerd at <paramref name="ttrpcAddress"/> (a socket path, optionally unix://).</summary>
    public TtrpcEventPublisher(string ttrpcAddress, string ns)
    {
        _address = ttrpcAddress.StartsWith("unix://", StringComparison.Ordinal) ? ttrpcAddress["unix://".Length..] : ttrpcAddress;
        _namespace = ns;
        _consumer = Task.Run(ConsumeAsync);
    }

    /// <inheritdoc />
    public void Publish(IMessage evt)
    {
        var request = new ForwardRequest
        {
            Envelope = new Envelope
            {
                Timestamp = Timestamp.FromDateTime(DateTime.UtcNow),
                Namespace = _namespace,
                Topic = EventTopics.TopicOf(evt),
                Event = TypeUrls.Pack(evt),
            },
        };
        Interlocked.Increment(ref _published);
        if (!_queue.Writer.TryWrite(request))
        {
            ShimLog.Error("event dropped: publisher stopped", ShimLog.Field("topic", request.Envelope.Topic));
        }
    }

    /// <inheritdoc />
    public async Task FlushAsync(TimeSpan timeout)
    {
        long target = Interlocked.Read(ref _published);
        var deadline = DateTime.UtcNow + timeout;
        while (Interlocked.Read(ref _delivered) < target && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _consumer.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        if (_client is not null)
        {
            await _client.DisposeAsync().ConfigureAwait(false);
        }
        _stop.Dispose();
    }

    private async Task ConsumeAsync()
    {
        var ct = _stop.Token;
        while (await _queue.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
        {
            while (_queue.Reader.TryRead(out var request))
            {
                await DeliverAsync(request, ct).ConfigureAwait(false);
                Interlocked.Increment(ref _delivered);
            }
        }
    }

    private async Task DeliverAsync(ForwardRequest request, CancellationToken ct)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                if (_client is null || _client.IsClosed)
                {
                    if (_client is not null)
                    {
                        await _client.DisposeAsync().ConfigureAwait(false);
                    }
                    _client = null;
                    _client = await TtrpcClient.ConnectAsync(_address, ct).ConfigureAwait(false);
                }
                await _client.CallAsync(Service, "Forward", request, Empty.Parser, ForwardTimeout, null, ct).ConfigureAwait(false);
                if (attempt > 1)
                {
                    ShimLog.Info("event delivered after retries", ShimLog.Field("topic", request.Envelope.Topic) + " " + ShimLog.Field("attempts", attempt));
                }
                return;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception ex)
            {
                if (attempt == 1 || attempt % 20 == 0)
                {
                    ShimLog.Warn("forwarding event failed, will retry", ShimLog.Field("topic", request.Envelope.Topic) + " " + ShimLog.Field("error", ex.Message));
                }
                if (_client is not null)
                {
                    await _client.DisposeAsync().ConfigureAwait(false);
                    _client = null;
                }
                await Task.Delay(delay, ct).ConfigureAwait(false);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 2000));
            }
        }
    }
}
