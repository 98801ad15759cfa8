using System.Text;
using System.Text.Json;

namespace Shim.Runc;

/// <summary>
/// Reads the runtime's JSON log (<c>--log-format json</c>) for the text of its last error. runc
/// writes <c>{"level":"error","msg":"...","time":"..."}</c> lines, crun <c>{"msg":"...","level":"error","time":"..."}</c>
/// (its strerror already in msg); keys are matched by name, so either order reads the same.
/// </summary>
internal static class RuncLog
{
    private const int TailBytes = 64 * 1024;

    /// <summary>The log's length now (0 when it does not exist yet): where the next call's lines start.</summary>
    public static long Size(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? info.Length : 0;
    }

    /// <summary>The "msg" of the last line whose level is "error" written at or after byte <paramref name="from"/>, or null.</summary>
    public static string? LastError(string path, long from = 0)
    {
        byte[] tail;
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None);
            // a log shorter than it was (replaced meanwhile) is read as a new one
            long start = Math.Max(from <= file.Length ? from : 0, file.Length - TailBytes);
            file.Position = start;
            tail = new byte[file.Length - start];
            file.ReadExactly(tail);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
        return LastErrorIn(tail);
    }

    /// <summary>The "msg" of the last error line in a chunk of JSON lines (partial first line ignored).</summary>
    public static string? LastErrorIn(ReadOnlySpan<byte> text)
    {
        while (!text.IsEmpty)
        {
            int nl = text.TrimEnd((byte)'\n').LastIndexOf((byte)'\n');
            var line = nl < 0 ? text : text[(nl + 1)..];
            text = nl < 0 ? default : text[..nl];
            if (TryParse(line.TrimEnd((byte)'\n'), out var level, out var msg) && level == "error" && msg is not null)
            {
                return msg;
            }
        }
        return null;
    }

    private static bool TryParse(ReadOnlySpan<byte> line, out string? level, out string? msg)
    {
        level = null;
        msg = null;
        try
        {
            var reader = new Utf8JsonReader(line);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool isLevel = reader.ValueTextEquals("level"u8);
                bool isMsg = reader.ValueTextEquals("msg"u8);
                if (!reader.Read())
                {
                    return false;
                }
                if (reader.TokenType == JsonTokenType.String)
                {
                    if (isLevel)
                    {
                        level = reader.GetString();
                    }
                    else if (isMsg)
                    {
                        msg = reader.GetString();
                    }
                }
                else
                {
                    reader.Skip();
                }
            }
            return level is not null;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: GetString on invalid UTF-8 or a lone \ud800 escape (found by fuzz/run.sh runc-log)
            return false;
        }
    }

    internal static string Trim(ReadOnlySpan<byte> stderr) => Encoding.UTF8.GetString(stderr).Trim();
}
