using System.Diagnostics.CodeAnalysis;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Shim.Core.Logging;

/// <summary>Log levels, ordered as logrus orders them for containerd.</summary>
public enum LogLevel
{
    /// <summary>Verbose detail, shown with -debug.</summary>
    Debug,
    /// <summary>Normal lifecycle lines.</summary>
    Info,
    /// <summary>Something went wrong but the shim carries on.</summary>
    Warn,
    /// <summary>An operation failed.</summary>
    Error,
}

/// <summary>
/// The shim's log: logrus-style text lines on fd 2, which serve mode points at the bundle's `log`
/// FIFO (containerd copies it into its own log). Writes never block: when the FIFO is full the line
/// is dropped and counted, because a stuck log must not stall container I/O. Made once by the host
/// and handed down (StdioContext, the exit sequencers, the event publisher); nothing is global.
/// </summary>
public sealed class ShimLogger
{
    private readonly Lock _gate = new();
    private readonly Stream? _sink;       // null: lines are dropped without a word (tests, the start action)
    private readonly LogLevel _minLevel;
    private readonly string _commonFields;
    private long _dropped;

    /// <summary>A log that writes nothing.</summary>
    public static ShimLogger Discard { get; } = new(null, LogLevel.Error, "");

    /// <summary>A log writing lines of <paramref name="minLevel"/> and up to <paramref name="sink"/>, each with <paramref name="commonFields"/>.</summary>
    public ShimLogger(Stream? sink, LogLevel minLevel, string commonFields)
    {
        _sink = sink;
        _minLevel = minLevel;
        _commonFields = commonFields;
    }

    /// <summary>A log on fd 2, already non-blocking (serve mode pointed it at the bundle's log FIFO).</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA2000:Dispose objects before losing scope", Justification = "the log lives as long as the process; fd 2 is not owned")]
    public static ShimLogger ToStderr(LogLevel minLevel, string commonFields) =>
        new(new FileStream(new SafeFileHandle(2, ownsHandle: false), FileAccess.Write, 0), minLevel, commonFields);

    /// <summary>True when debug lines are written; guard field formatting on hot paths with it.</summary>
    public bool DebugEnabled => _minLevel <= LogLevel.Debug && _sink is not null;

    /// <summary>Lines dropped because the log pipe was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Debug line.</summary>
    public void Debug(string message, string? fields = null) => Write(LogLevel.Debug, message, fields);

    /// <summary>Info line.</summary>
    public void Info(string message, string? fields = null) => Write(LogLevel.Info, message, fields);

    /// <summary>Warning line.</summary>
    public void Warn(string message, string? fields = null) => Write(LogLevel.Warn, message, fields);

    /// <summary>Error line.</summary>
    public void Error(string message, string? fields = null) => Write(LogLevel.Error, message, fields);

    private void Write(LogLevel level, string message, string? fields)
    {
        if (level < _minLevel || _sink is null)
        {
            return;
        }
        var line = new StringBuilder(128);
        line.Append("time=\"").Append(DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ", System.Globalization.CultureInfo.InvariantCulture))
            .Append("\" level=").Append(level switch { LogLevel.Debug => "debug", LogLevel.Info => "info", LogLevel.Warn => "warning", _ => "error" })
            .Append(" msg=").Append(ShimLog.Quote(message));
        if (fields is { Length: > 0 })
        {
            line.Append(' ').Append(fields);
        }
        if (_commonFields.Length > 0)
        {
            line.Append(' ').Append(_commonFields);
        }
        line.Append('\n');
        byte[] bytes = Encoding.UTF8.GetBytes(line.ToString());
        lock (_gate)
        {
            try
            {
                _sink.Write(bytes);
            }
            catch (IOException)
            {
                Interlocked.Increment(ref _dropped);
            }
        }
    }
}

/// <summary>The log's field formatting (logrus's): a pure function, shared by every caller.</summary>
public static class ShimLog
{
    /// <summary>Formats one field as logrus does (quoted when needed).</summary>
    public static string Field(string key, object? value)
    {
        string text = value?.ToString() ?? "";
        bool quote = text.Length == 0 || text.AsSpan().IndexOfAny(" =\"\t\n") >= 0;
        return quote ? $"{key}={Quote(text)}" : $"{key}={text}";
    }

    internal static string Quote(string text) =>
        "\"" + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal) + "\"";
}
