-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: db.example.net    Database: greylisting
-- ------------------------------------------------------
-- Server version	10.11.19-MariaDB-0+deb12u1

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;
/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;
/*!40101 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;

--
-- Table structure for table `greylisting_data`
--

DROP TABLE IF EXISTS `greylisting_data`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `greylisting_data` (
  `id` bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  `relay_ip` varbinary(16) DEFAULT NULL,
  `mail_from` varchar(255) DEFAULT NULL,
  `rcpt_to` varchar(255) DEFAULT NULL,
  `block_expires` datetime NOT NULL,
  `record_expires` datetime NOT NULL,
  `blocked_count` int(10) unsigned NOT NULL DEFAULT 0,
  `passed_count` int(10) unsigned NOT NULL DEFAULT 0,
  `aborted_count` int(10) unsigned NOT NULL DEFAULT 0,
  `create_time` timestamp NOT NULL DEFAULT current_timestamp(),
  `last_update` timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  PRIMARY KEY (`id`),
  KEY `relay_ip` (`relay_ip`),
  KEY `mail_from` (`mail_from`(20)),
  KEY `rcpt_to` (`rcpt_to`(20))
) ENGINE=InnoDB AUTO_INCREMENT=8 DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `greylisting_data`
--

LOCK TABLES `greylisting_data` WRITE;
/*!40000 ALTER TABLE `greylisting_data` DISABLE KEYS */;
INSERT INTO `greylisting_data` (`id`, `relay_ip`, `mail_from`, `rcpt_to`, `block_expires`, `record_expires`, `blocked_count`, `passed_count`, `aborted_count`, `create_time`, `last_update`) VALUES (1,0xC000020A,'alice@example.org','bob@example.net','2015-06-09 08:55:00','2015-07-15 09:30:00',1,4,0,'2015-06-09 08:00:00','2015-06-09 09:30:00'),(2,0xC0000214,'alice@example.org','bob@example.net','2015-06-10 10:55:00','2015-06-10 18:20:00',2,0,0,'2015-06-10 10:00:00','2015-06-10 10:05:00'),(3,0x20010DB8000100020000000000000025,'','postmaster@example.net','2015-06-10 11:40:00','2015-06-10 19:05:00',1,0,0,'2015-06-10 10:45:00','2015-06-10 10:45:00'),(4,0x00000000000000000000FFFFCB007132,'carol@example.com','dave@example.net','2015-06-08 12:55:00','2015-07-14 13:10:00',1,1,0,'2015-06-08 12:00:00','2015-06-08 13:10:00'),(5,0xCB00713C,'x@example.com','y@example.net','2015-06-01 00:55:00','2015-06-01 08:20:00',1,0,0,'2015-06-01 00:00:00','2015-06-01 00:00:00'),(6,NULL,'eve@example.com','frank@example.net','2015-06-10 11:00:00','2015-06-10 18:25:00',1,0,0,'2015-06-10 10:05:00','2015-06-10 10:05:00'),(7,0x0A000001,'grace@example.com','heidi@example.net','2015-06-10 11:30:00','2015-06-10 18:55:00',1,0,0,'2015-06-10 10:35:00','2015-06-10 10:35:00');
/*!40000 ALTER TABLE `greylisting_data` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `greylisting_lists`
--

DROP TABLE IF EXISTS `greylisting_lists`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `greylisting_lists` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `ipaddr` varchar(43) DEFAULT NULL,
  `ipaddr_start` varbinary(16) DEFAULT NULL,
  `ipaddr_end` varbinary(16) DEFAULT NULL,
  `ipaddr_prefixsize` tinyint(3) unsigned DEFAULT NULL,
  `rcpt_to` varchar(255) DEFAULT NULL,
  `block_expires` datetime NOT NULL,
  `record_expires` datetime NOT NULL,
  `create_time` timestamp NOT NULL DEFAULT current_timestamp(),
  `last_update` timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  `comment` varchar(255) NOT NULL,
  PRIMARY KEY (`id`),
  KEY `ipaddr_start` (`ipaddr_start`),
  KEY `ipaddr_end` (`ipaddr_end`),
  KEY `rcpt_to` (`rcpt_to`(20))
) ENGINE=InnoDB AUTO_INCREMENT=7 DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `greylisting_lists`
--

LOCK TABLES `greylisting_lists` WRITE;
/*!40000 ALTER TABLE `greylisting_lists` DISABLE KEYS */;
INSERT INTO `greylisting_lists` (`id`, `ipaddr`, `ipaddr_start`, `ipaddr_end`, `ipaddr_prefixsize`, `rcpt_to`, `block_expires`, `record_expires`, `create_time`, `last_update`, `comment`) VALUES (1,'127.0.0.1',0x7F000001,0x7F000001,NULL,NULL,'0000-00-00 00:00:00','9999-12-31 23:59:59','2015-05-19 20:00:00','2015-05-19 20:00:00','whitelist for localhost'),(2,'198.51.100.0/24',0xC6336400,NULL,24,NULL,'9999-12-31 23:59:59','9999-12-31 23:59:59','2015-05-20 08:30:00','2015-05-20 08:30:00','blacklist: snowshoe spam range'),(3,'2001:db8:85a3::/48',0x20010DB885A300000000000000000000,NULL,48,NULL,'0000-00-00 00:00:00','2015-12-31 23:59:59','2015-05-21 09:00:00','2015-05-21 09:00:00','partner IPv6 range'),(4,NULL,0x30,0x30,0,'example.org','0000-00-00 00:00:00','9999-12-31 23:59:59','2015-05-22 10:00:00','2015-05-22 10:00:00','no greylisting for example.org'),(5,NULL,0x30,0x30,0,'sub.example.com','9999-12-31 23:59:59','9999-12-31 23:59:59','2015-05-23 11:00:00','2015-05-23 11:00:00',''),(6,'203.0.113.7',0xCB007107,0xCB007107,NULL,NULL,'0000-00-00 00:00:00','2015-01-01 00:00:00','2014-12-01 00:00:00','2014-12-01 00:00:00','temporary whitelist, over');
/*!40000 ALTER TABLE `greylisting_lists` ENABLE KEYS */;
UNLOCK TABLES;
/*!50003 SET @saved_cs_client      = @@character_set_client */ ;
/*!50003 SET @saved_cs_results     = @@character_set_results */ ;
/*!50003 SET @saved_col_connection = @@collation_connection */ ;
/*!50003 SET character_set_client  = utf8mb3 */ ;
/*!50003 SET character_set_results = utf8mb3 */ ;
/*!50003 SET collation_connection  = utf8mb3_general_ci */ ;
/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;
/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION' */ ;
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `greylisting_lists_insert` BEFORE INSERT ON `greylisting_lists`
FOR EACH ROW
BEGIN
  IF NEW.`ipaddr` IS NULL THEN
    SET NEW.`ipaddr_start` = 0;
    SET NEW.`ipaddr_end` = 0;
    SET NEW.`ipaddr_prefixsize` = 0;
  ELSEIF INSTR(NEW.`ipaddr`, '/') THEN
    SET NEW.`ipaddr_start` = INET6_ATON(SUBSTRING_INDEX(NEW.`ipaddr`, '/', 1));
    SET NEW.`ipaddr_prefixsize` = SUBSTRING_INDEX(NEW.`ipaddr`, '/', -1);
  ELSE
    SET NEW.`ipaddr_start` = INET6_ATON(NEW.`ipaddr`);
    SET NEW.`ipaddr_end` = NEW.`ipaddr_start`;
  END IF;
END 
*/;;
DELIMITER ;
/*!50003 SET sql_mode              = @saved_sql_mode */ ;
/*!50003 SET character_set_client  = @saved_cs_client */ ;
/*!50003 SET character_set_results = @saved_cs_results */ ;
/*!50003 SET collation_connection  = @saved_col_connection */ ;
/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;

/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */;
/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;
/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;

-- Dump completed on 2015-06-10 12:00:02
