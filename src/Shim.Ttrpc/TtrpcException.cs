using System.Diagnostics.CodeAnalysis;

namespace Shim.Ttrpc;

/// <summary>
/// A call failed with a ttrpc status: thrown by handlers to choose the code, and by the client
/// when the server answers non-OK or the connection dies.
/// </summary>
[SuppressMessage("Design", "CA1032:Implement standard exception constructors", Justification = "every TtrpcException carries a status code")]
public sealed class TtrpcException : Exception
{
    /// <summary>Creates an exception carrying <paramref name="code"/> and <paramref name="message"/>.</summary>
    public TtrpcException(StatusCode code, string message)
        : base(message)
    {
        Code = code;
    }

    /// <summary>Creates an exception carrying a status and the failure that caused it.</summary>
    public TtrpcException(StatusCode code, string message, Exception? innerException)
        : base(message, innerException)
    {
        Code = code;
    }

    /// <summary>The status code sent (server side) or received (client side).</summary>
    public StatusCode Code { get; }
}
