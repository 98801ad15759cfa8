using Google.Protobuf;
using Shim.Ttrpc.Wire;

namespace Shim.Ttrpc;

/// <summary>One dispatched call: queued to the thread pool so a slow or blocking handler never holds up the read loop.</summary>
internal sealed class ServerCall : IThreadPoolWorkItem, IDisposable
{
    private readonly ServerConnection _connection;
    private readonly CancellationTokenSource? _deadline;

    public ServerCall(ServerConnection connection, uint streamId, MethodHandler handler, IMessage message, Request request, CancellationToken connectionToken)
    {
        _connection = connection;
        StreamId = streamId;
        Handler = handler;
        Message = message;

        var token = connectionToken;
        if (request.TimeoutNano > 0)
        {
            // Ticks are 100 ns; CancelAfter accepts at most ~49 days, beyond which a deadline is moot.
            var delay = TimeSpan.FromTicks(Math.Max(1, request.TimeoutNano / 100));
            if (delay.TotalMilliseconds < uint.MaxValue - 1)
            {
                _deadline = CancellationTokenSource.CreateLinkedTokenSource(connectionToken);
                _deadline.CancelAfter(delay);
                token = _deadline.Token;
            }
        }

        Context = new TtrpcCallContext(request.Service, request.Method, ToMetadata(request), token, connectionToken);
    }

    public uint StreamId { get; }

    public MethodHandler Handler { get; }

    public IMessage Message { get; }

    public TtrpcCallContext Context { get; }

    /// <summary>True when the request's own timeout_nano deadline has fired.</summary>
    public bool DeadlineExpired => _deadline?.IsCancellationRequested == true;

    public void Execute() => _ = _connection.RunCallAsync(this);

    public void Dispose() => _deadline?.Dispose();

    private static KeyValuePair<string, string>[] ToMetadata(Request request)
    {
        if (request.Metadata.Count == 0)
        {
            return [];
        }

        var result = new KeyValuePair<string, string>[request.Metadata.Count];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = new(request.Metadata[i].Key, request.Metadata[i].Value);
        }

        return result;
    }
}
