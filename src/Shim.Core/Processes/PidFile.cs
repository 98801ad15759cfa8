using System.Globalization;
using Shim.Core.Errors;

namespace Shim.Core.Processes;

/// <summary>The pid file the runtime writes with --pid-file (create, exec, restore).</summary>
internal static class PidFile
{
    /// <summary>Reads the pid; Internal when the file does not hold a positive number.</summary>
    public static int Read(string path)
    {
        string text = File.ReadAllText(path).Trim();
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int pid) || pid <= 0)
        {
            throw new ShimException(ErrorKind.Internal, $"reading pid file {path}: the runtime wrote \"{text}\", which is no pid");
        }
        return pid;
    }
}
