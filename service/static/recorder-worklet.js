/* AudioWorklet for the page's microphone recording: forwards each block of the first input channel. */
class RaincleanRecorder extends AudioWorkletProcessor {
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel && channel.length) this.port.postMessage(channel.slice(0));
    return true;
  }
}
registerProcessor("rainclean-recorder", RaincleanRecorder);
