using Google.Protobuf;
using Shim.Core.Errors;
using Shim.Core.Processes;
using Shim.Runc;
using Shim.Ttrpc.Wire;

namespace Shim.Ttrpc.Fuzz;

/// <summary>A property the decoder or a handler broke; the fuzzer reports it as a crash.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1032:Implement standard exception constructors", Justification = "a failure always says which property broke")]
internal sealed class FuzzFailure(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// One fuzz input is the bytes a client sends on one connection. They are decoded frame by frame
/// with the server's own rules (<see cref="RequestDecoder"/>), and every call the server would
/// dispatch runs on the real task service. A crash is any exception other than the documented
/// failure kinds, a success status on an error, or a handler that does not answer in time.
/// One instance per thread.
/// </summary>
internal sealed class FuzzTarget : IDecodeSink
{
    private static readonly TimeSpan HandlerDeadline = TimeSpan.FromSeconds(5);

    public FuzzTarget(TtrpcServiceRegistry? registry = null)
    {
        Registry = registry ?? FuzzTaskService.NewRegistry();
    }

    public TtrpcServiceRegistry Registry { get; }

    /// <summary>Inputs decoded so far.</summary>
    public long Inputs { get; private set; }

    /// <summary>Frames answered with an error without running a handler.</summary>
    public long Rejections { get; private set; }

    /// <summary>Calls dispatched (parsed down to the typed message).</summary>
    public long Dispatches { get; private set; }

    /// <summary>Handlers actually invoked (all dispatched calls except <see cref="FuzzTaskService.NeverInvoked"/>).</summary>
    public long Invoked { get; private set; }

    /// <summary>Handler invocations per method name.</summary>
    public Dictionary<string, long> InvokedByMethod { get; } = new(StringComparer.Ordinal);

    /// <summary>Decodes and dispatches one input; throws <see cref="FuzzFailure"/> on a broken property.</summary>
    public StreamEnd Run(ReadOnlySpan<byte> input)
    {
        Inputs++;
        return RequestDecoder.DecodeStream(input, Registry, this);
    }

    public void Rejected(uint streamId, StatusCode code, string message)
    {
        Rejections++;
        if (code == StatusCode.OK || string.IsNullOrEmpty(message))
        {
            throw new FuzzFailure($"stream {streamId}: rejected with code {code} and message \"{message}\"");
        }

        // What the server would write must encode to a valid frame.
        var frame = WireEncoding.EncodeStatus(streamId, code, message);
        try
        {
            if (frame.Length > FrameCodec.HeaderSize + FrameCodec.MaxPayload)
            {
                throw new FuzzFailure($"stream {streamId}: status frame of {frame.Length} bytes exceeds the limit");
            }
        }
        finally
        {
            frame.Return();
        }
    }

    public void Dispatched(uint streamId, Request request, MethodHandler handler, IMessage message)
    {
        Dispatches++;
        _ = message.CalculateSize();   // the typed message must be usable, not just parsed
        if (request.Method == FuzzTaskService.NeverInvoked)
        {
            return;
        }

        Invoked++;
        InvokedByMethod[request.Method] = InvokedByMethod.GetValueOrDefault(request.Method) + 1;
        var context = new TtrpcCallContext(request.Service, request.Method, [], CancellationToken.None);
        Task<IMessage> call;
        try
        {
            call = handler.InvokeAsync(message, context).AsTask();
        }
        catch (Exception ex)
        {
            throw Check(request, ex) ?? new FuzzFailure($"{Describe(request)}: threw synchronously", ex);
        }

        if (!call.IsCompleted)
        {
            try
            {
                call.Wait(HandlerDeadline);
            }
            catch (AggregateException)
            {
                // judged below, like a call that failed at once
            }
        }

        if (!call.IsCompleted)
        {
            throw new FuzzFailure($"{Describe(request)}: no answer within {HandlerDeadline.TotalSeconds} s (hang)");
        }

        if (call.IsCompletedSuccessfully)
        {
            var response = call.Result ?? throw new FuzzFailure($"{Describe(request)}: handler returned null");
            _ = response.CalculateSize();
            return;
        }

        var error = call.Exception?.InnerException ?? new FuzzFailure("faulted without an exception");
        if (Check(request, error) is { } failure)
        {
            throw failure;
        }
    }

    /// <summary>Null when <paramref name="ex"/> is a failure kind the shim maps on purpose to a non-OK status.</summary>
    private static FuzzFailure? Check(Request request, Exception ex)
    {
        bool expected = ex is ShimException or RuncException or TtrpcException or OperationCanceledException or InvalidProtocolBufferException;
        if (!expected)
        {
            return new FuzzFailure($"{Describe(request)}: unexpected {ex.GetType().Name}: {ex.Message}", ex);
        }

        var (code, text) = StatusMapping.ToStatus(ex);
        if (code == StatusCode.OK)
        {
            return new FuzzFailure($"{Describe(request)}: {ex.GetType().Name} mapped to OK ({text})", ex);
        }

        return null;
    }

    private static string Describe(Request request) =>
        $"{request.Service}/{request.Method} payload {Convert.ToHexString(request.Payload.Span[..Math.Min(64, request.Payload.Length)])}";
}
