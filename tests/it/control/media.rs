//! What a stopped recording becomes: chunks cut by duration or size, metadata that matches
//! what happened, and media files that parse.

use std::time::{Duration, Instant};

use callvault_emulator::tone_hz;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::*;

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .to_utc()
}

fn ms_between(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_milliseconds()
}

/// The header fields of a RIFF/WAVE file, checked for consistency with its length.
struct WavHeader {
    channels: u16,
    sample_rate: u32,
    data: std::ops::Range<usize>,
}

fn parse_wav(file: &[u8]) -> WavHeader {
    let u32_at = |at: usize| u32::from_le_bytes(file[at..at + 4].try_into().unwrap());
    let u16_at = |at: usize| u16::from_le_bytes(file[at..at + 2].try_into().unwrap());
    assert_eq!(&file[0..4], b"RIFF");
    assert_eq!(u32_at(4) as usize, file.len() - 8, "RIFF size");
    assert_eq!(&file[8..12], b"WAVE");
    assert_eq!(&file[12..16], b"fmt ");
    assert_eq!(u32_at(16), 16, "PCM fmt chunk");
    assert_eq!(u16_at(20), 1, "PCM");
    let channels = u16_at(22);
    let sample_rate = u32_at(24);
    assert_eq!(
        u32_at(28),
        sample_rate * u32::from(channels) * 2,
        "byte rate"
    );
    assert_eq!(u16_at(32), channels * 2, "block align");
    assert_eq!(u16_at(34), 16, "bits per sample");
    assert_eq!(&file[36..40], b"data");
    assert_eq!(u32_at(40) as usize, file.len() - 44, "data size");
    WavHeader {
        channels,
        sample_rate,
        data: 44..file.len(),
    }
}

/// The sample at frame `frame` of `channel`.
fn sample_at(file: &[u8], header: &WavHeader, frame: usize, channel: u16) -> i16 {
    let at = header.data.start + (frame * usize::from(header.channels) + usize::from(channel)) * 2;
    i16::from_le_bytes([file[at], file[at + 1]])
}

/// How often `channel` goes from below zero to zero or above within `ms`.
fn upward_crossings(
    file: &[u8],
    header: &WavHeader,
    ms: std::ops::Range<usize>,
    channel: u16,
) -> usize {
    let frames = ms.start * 16..ms.end * 16;
    frames
        .clone()
        .zip(frames.skip(1))
        .filter(|&(a, b)| {
            sample_at(file, header, a, channel) < 0 && sample_at(file, header, b, channel) >= 0
        })
        .count()
}

/// Whether the 10 ms after `ms` hold any sound on `channel`.
fn sounds(file: &[u8], header: &WavHeader, ms: u64, channel: u16) -> bool {
    let first = ms as usize * 16;
    (first..first + 160).any(|frame| sample_at(file, header, frame, channel) != 0)
}

#[tokio::test]
async fn pause_resume_intervals_match_the_real_pauses_and_the_wav_is_silent_there() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let participants = ["8:acs:alice", "8:acs:bob", "8:acs:carol"];
    let call_id = emulator.register_call("srv-pauses", participants);
    let call = ga("srv-pauses");
    let before_start = Instant::now();
    let id = client
        .start(&call, &options("audio", "unmixed", "wav"))
        .await
        .unwrap()
        .recording_id;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pause_1 = Instant::now();
    client.pause(&call, &id).await.unwrap();
    let paused_1 = Instant::now();
    tokio::time::sleep(Duration::from_millis(400)).await;
    client.resume(&call, &id).await.unwrap();
    let resumed_1 = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.pause(&call, &id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.stop(&call, &id).await.unwrap();

    let snapshot = stopped(&emulator, &id).await;
    assert_eq!(snapshot.call_id, call_id);
    let metadata = metadata(&emulator, &snapshot, 0).await;
    assert_eq!(metadata["callId"], call_id.as_str());
    assert_eq!(metadata["chunkIndex"], 0);
    let start = time(&metadata["chunkStartTime"]);
    assert_eq!((start - snapshot.started_at).num_milliseconds(), 0);
    let intervals = metadata["pauseResumeIntervals"].as_array().unwrap();
    assert_eq!(intervals.len(), 2, "{metadata:#}");
    let first_start = ms_between(start, time(&intervals[0]["startTime"]));
    let first_duration = intervals[0]["duration"].as_i64().unwrap();
    let most = (paused_1 - before_start).as_millis() as i64 + 1;
    assert!(
        (300..=most).contains(&first_start),
        "first pause at {first_start} ms"
    );
    let longest = (resumed_1 - pause_1).as_millis() as i64 + 1;
    assert!(
        (400..=longest).contains(&first_duration),
        "first pause lasted {first_duration} ms"
    );
    let second_duration = intervals[1]["duration"].as_i64().unwrap();
    assert!(
        second_duration >= 200,
        "the pause open at stop lasts until the stop"
    );
    let chunk_duration = metadata["chunkDuration"].as_i64().unwrap();
    let second_start = ms_between(start, time(&intervals[1]["startTime"]));
    assert_eq!(
        second_start + second_duration,
        chunk_duration,
        "ends at the stop"
    );
    let listed: Vec<&str> = metadata["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["participantId"].as_str().unwrap())
        .collect();
    assert_eq!(listed, participants);
    assert_eq!(metadata["recordingInfo"]["format"], "wav");
    assert_eq!(
        metadata["recordingInfo"]["audioConfiguration"]["channels"],
        3
    );

    let event = snapshot.file_status_event.as_ref().unwrap();
    let chunk = &chunks(event)[0];
    let content = chunk["contentLocation"].as_str().unwrap();
    assert!(content.ends_with("/content/audio"), "{content}");
    let file = download(&emulator, content).await;
    let header = parse_wav(&file);
    assert_eq!(header.channels, 3, "one channel per participant");
    assert_eq!(header.sample_rate, 16_000);
    assert_eq!(
        (header.data.len() / 6) as i64,
        chunk_duration * 16,
        "samples match chunkDuration"
    );
    for channel in 0..3 {
        assert!(
            sounds(&file, &header, 100, channel),
            "channel {channel} is heard"
        );
        let middle = first_start as u64 + first_duration as u64 / 2;
        assert!(
            !sounds(&file, &header, middle, channel),
            "silent while paused"
        );
    }
    for channel in 0..3u16 {
        // Upward zero crossings in 100 ms: a tenth of the tone's frequency.
        let expected = i64::from(tone_hz(usize::from(channel)) / 10);
        let counted = upward_crossings(&file, &header, 0..100, channel) as i64;
        assert!(
            (counted - expected).abs() <= 1,
            "channel {channel}: {counted} crossings"
        );
    }
}

#[tokio::test]
async fn a_long_recording_is_cut_at_the_maximum_duration() {
    let emulator = start_emulator(config(RecordingConfig {
        chunk_max_duration: Duration::from_secs(60),
        time_scale: 600.0,
        ..RecordingConfig::default()
    }))
    .await;
    let client = client(&emulator);
    let call = ga("srv-long");
    let id = client
        .start(&call, &options("audio", "mixed", "mp3"))
        .await
        .unwrap()
        .recording_id;
    // 0.4 s at 600× is four minutes of call: at least five chunks of just under a minute.
    tokio::time::sleep(Duration::from_millis(400)).await;
    client.stop(&call, &id).await.unwrap();
    let snapshot = stopped(&emulator, &id).await;
    let event = snapshot.file_status_event.clone().unwrap();
    let chunks = chunks(&event);
    assert!(chunks.len() >= 5, "{} chunks", chunks.len());
    let total = event["data"]["recordingDurationMs"].as_u64().unwrap();
    assert_eq!(total, snapshot.duration_ms.unwrap());
    assert_eq!(event["data"]["recordingFormatType"], "Mp3");
    assert_eq!(event["data"]["recordingChannelType"], "Mixed");
    let mut expected_start = time(&event["data"]["recordingStartTime"]);
    for (index, chunk) in chunks.iter().enumerate() {
        let last = index + 1 == chunks.len();
        assert_eq!(chunk["index"], index);
        let reason = if last {
            "SessionEnded"
        } else {
            "ChunkMaximumSizeExceeded"
        };
        assert_eq!(chunk["endReason"], reason);
        let metadata = metadata(&emulator, &snapshot, index).await;
        assert_eq!(metadata["chunkIndex"], index);
        assert_eq!(metadata["chunkDocumentId"], chunk["documentId"]);
        assert_eq!(time(&metadata["chunkStartTime"]), expected_start);
        let duration = metadata["chunkDuration"].as_u64().unwrap();
        if !last {
            assert_eq!(duration, 59_976, "whole MP3 frames within a minute");
        }
        expected_start += chrono::Duration::milliseconds(duration as i64);
        let media = download(&emulator, chunk["contentLocation"].as_str().unwrap()).await;
        assert_eq!(
            media.len() as u64,
            duration.div_ceil(36) * 144,
            "MP3 frames"
        );
        assert_eq!(
            &media[..2],
            &[0xFF, 0xF3],
            "an MPEG-2 Layer III frame header"
        );
    }
    assert_eq!(
        ms_between(time(&event["data"]["recordingStartTime"]), expected_start),
        total as i64
    );
}

#[tokio::test]
async fn the_maximum_size_cuts_chunks_whose_files_fit_it() {
    let max_bytes = 64_000u64;
    let emulator = start_emulator(config(RecordingConfig {
        chunk_max_bytes: Some(max_bytes),
        time_scale: 20.0,
        ..RecordingConfig::default()
    }))
    .await;
    let client = client(&emulator);
    let call = ga("srv-size");
    let id = client
        .start(&call, &options("audio", "mixed", "wav"))
        .await
        .unwrap()
        .recording_id;
    // 0.3 s at 20× is six seconds of mono WAV (192 kB): at least three chunks.
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.stop(&call, &id).await.unwrap();
    let snapshot = stopped(&emulator, &id).await;
    let chunks = chunks(snapshot.file_status_event.as_ref().unwrap());
    assert!(chunks.len() >= 3, "{} chunks", chunks.len());
    for (index, chunk) in chunks.iter().enumerate() {
        let file = download(&emulator, chunk["contentLocation"].as_str().unwrap()).await;
        assert!(
            file.len() as u64 <= max_bytes,
            "chunk {index}: {}",
            file.len()
        );
        let header = parse_wav(&file);
        assert_eq!(header.channels, 1, "mixed is mono");
        if index + 1 < chunks.len() {
            assert_eq!(chunk["endReason"], "ChunkMaximumSizeExceeded");
            assert!(
                file.len() as u64 > max_bytes - 32,
                "a full chunk fills the limit"
            );
        } else {
            assert_eq!(chunk["endReason"], "SessionEnded");
        }
    }
}

#[tokio::test]
async fn an_audio_video_recording_is_an_mp4_whose_boxes_add_up() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let call = ga("srv-mp4");
    let id = client
        .start(&call, &options("audioVideo", "mixed", "mp4"))
        .await
        .unwrap()
        .recording_id;
    tokio::time::sleep(Duration::from_millis(100)).await;
    client.stop(&call, &id).await.unwrap();
    let snapshot = stopped(&emulator, &id).await;
    let event = snapshot.file_status_event.clone().unwrap();
    assert_eq!(event["data"]["recordingContentType"], "AudioVideo");
    let chunk = &chunks(&event)[0];
    assert!(
        chunk["contentLocation"]
            .as_str()
            .unwrap()
            .ends_with("/content/video")
    );
    let file = download(&emulator, chunk["contentLocation"].as_str().unwrap()).await;
    let mut at = 0usize;
    let mut kinds = Vec::new();
    while at < file.len() {
        let mut size = u64::from(u32::from_be_bytes(file[at..at + 4].try_into().unwrap()));
        if size == 1 {
            size = u64::from_be_bytes(file[at + 8..at + 16].try_into().unwrap());
        }
        kinds.push(String::from_utf8_lossy(&file[at + 4..at + 8]).into_owned());
        at += size as usize;
    }
    assert_eq!(at, file.len(), "box sizes add up to the file");
    assert_eq!(kinds, ["ftyp", "moov", "mdat"]);
    let metadata = metadata(&emulator, &snapshot, 0).await;
    assert_eq!(
        metadata["recordingInfo"]["videoConfiguration"]["longerSideLength"],
        1920
    );
    assert_eq!(
        metadata["participants"].as_array().unwrap().len(),
        2,
        "two by default"
    );
}
