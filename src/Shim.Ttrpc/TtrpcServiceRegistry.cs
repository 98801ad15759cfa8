using System.Collections.Concurrent;
using Google.Protobuf;

namespace Shim.Ttrpc;

/// <summary>Binds (service, method) names to typed handlers.</summary>
public sealed class TtrpcServiceRegistry
{
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, MethodHandler>> _services =
        new(StringComparer.Ordinal);

    /// <summary>
    /// Registers <paramref name="handler"/> for <paramref name="service"/>/<paramref name="method"/>;
    /// the request payload is parsed with <paramref name="parser"/>. Registering a pair twice throws.
    /// </summary>
    public void Register<TRequest, TResponse>(
        string service,
        string method,
        MessageParser<TRequest> parser,
        Func<TRequest, TtrpcCallContext, ValueTask<TResponse>> handler)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>
    {
        ArgumentException.ThrowIfNullOrEmpty(service);
        ArgumentException.ThrowIfNullOrEmpty(method);
        ArgumentNullException.ThrowIfNull(parser);
        ArgumentNullException.ThrowIfNull(handler);

        var methods = _services.GetOrAdd(service, static _ => new ConcurrentDictionary<string, MethodHandler>(StringComparer.Ordinal));
        if (!methods.TryAdd(method, new MethodHandler<TRequest, TResponse>(parser, handler)))
        {
            throw new InvalidOperationException($"ttrpc method {service}/{method} is already registered");
        }
    }

    /// <summary>Finds the handler, or the UNIMPLEMENTED status message the Go server would give.</summary>
    internal MethodHandler? Find(string service, string method, out string? notFound)
    {
        if (!_services.TryGetValue(service, out var methods))
        {
            // containerd matches on code 12 (e.g. to fall back from task v3 to v2); keep Go's wording.
            notFound = $"service {service}";
            return null;
        }

        if (!methods.TryGetValue(method, out var handler))
        {
            notFound = $"method {method}";
            return null;
        }

        notFound = null;
        return handler;
    }
}

/// <summary>A registered method with its request type erased, so the server can dispatch by name.</summary>
internal abstract class MethodHandler
{
    /// <summary>Parses the request payload; throws on malformed bytes.</summary>
    public abstract IMessage Parse(ReadOnlySpan<byte> payload);

    public abstract ValueTask<IMessage> InvokeAsync(IMessage request, TtrpcCallContext context);
}

internal sealed class MethodHandler<TRequest, TResponse> : MethodHandler
    where TRequest : IMessage<TRequest>
    where TResponse : IMessage<TResponse>
{
    private readonly MessageParser<TRequest> _parser;
    private readonly Func<TRequest, TtrpcCallContext, ValueTask<TResponse>> _handler;

    public MethodHandler(MessageParser<TRequest> parser, Func<TRequest, TtrpcCallContext, ValueTask<TResponse>> handler)
    {
        _parser = parser;
        _handler = handler;
    }

    public override IMessage Parse(ReadOnlySpan<byte> payload) => _parser.ParseFrom(payload);

    public override async ValueTask<IMessage> InvokeAsync(IMessage request, TtrpcCallContext context) =>
        await _handler((TRequest)request, context).ConfigureAwait(false);
}
