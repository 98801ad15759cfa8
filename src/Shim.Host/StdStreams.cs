using Microsoft.Win32.SafeHandles;

namespace Shim.Host;

/// <summary>
/// fd 0, 1 and 2 as plain streams for the short-lived actions (`start`, `delete`, `-info`):
/// System.Console would set up terminal and signal handling, a thread, before the first byte.
/// </summary>
internal static class StdStreams
{
    private const int Limit = 10 << 20; // the Go shim reads at most 10 MiB too

    /// <summary>All of stdin up to 10 MiB; empty when there is none (closed, a tty, /dev/null).</summary>
    public static byte[] ReadStdin()
    {
        try
        {
            using var handle = new SafeFileHandle(0, ownsHandle: false);
            using var stdin = new FileStream(handle, FileAccess.Read, bufferSize: 0);
            using var buffer = new MemoryStream();
            var chunk = new byte[4096];
            int n;
            while ((n = stdin.Read(chunk)) > 0 && buffer.Length < Limit)
            {
                buffer.Write(chunk, 0, n);
            }
            return buffer.ToArray();
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    /// <summary>Writes <paramref name="data"/> to stdout, unbuffered.</summary>
    public static void WriteStdout(ReadOnlySpan<byte> data)
    {
        using var handle = new SafeFileHandle(1, ownsHandle: false);
        using var stdout = new FileStream(handle, FileAccess.Write, bufferSize: 0);
        stdout.Write(data);
    }

    /// <summary>Writes <paramref name="text"/> (UTF-8) to stderr, unbuffered; a closed stderr is ignored.</summary>
    public static void WriteStderr(string text)
    {
        try
        {
            using var handle = new SafeFileHandle(2, ownsHandle: false);
            using var stderr = new FileStream(handle, FileAccess.Write, bufferSize: 0);
            stderr.Write(System.Text.Encoding.UTF8.GetBytes(text));
        }
        catch (IOException)
        {
        }
    }
}
