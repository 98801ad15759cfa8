namespace Shim.Ttrpc;

/// <summary>Per-call context given to handlers.</summary>
public sealed class TtrpcCallContext
{
    /// <summary>Creates a context; the server builds these, tests of handlers may too.</summary>
    public TtrpcCallContext(
        string service,
        string method,
        IReadOnlyList<KeyValuePair<string, string>>? metadata = null,
        CancellationToken cancellationToken = default,
        CancellationToken connectionClosed = default)
    {
        Service = service;
        Method = method;
        Metadata = metadata ?? [];
        CancellationToken = cancellationToken;
        ConnectionClosed = connectionClosed;
    }

    /// <summary>The fully qualified service name, e.g. <c>containerd.task.v3.Task</c>.</summary>
    public string Service { get; }

    /// <summary>The method name within the service, e.g. <c>Create</c>.</summary>
    public string Method { get; }

    /// <summary>Request metadata in wire order; a key may appear more than once.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Metadata { get; }

    /// <summary>Fires on the request's <c>timeout_nano</c> deadline, forced server shutdown or connection loss.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>
    /// Fires when the call's connection is closed (the peer hung up, or the server closed it), also
    /// after the call was answered: what a handler waits on to let the client go first.
    /// </summary>
    public CancellationToken ConnectionClosed { get; }

    /// <summary>The first value of metadata <paramref name="key"/> (keys compare ordinally), or null.</summary>
    public string? GetMetadata(string key)
    {
        foreach (var (k, v) in Metadata)
        {
            if (string.Equals(k, key, StringComparison.Ordinal))
            {
                return v;
            }
        }

        return null;
    }
}
